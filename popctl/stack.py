"""A stack's outputs, read through the Pulumi CLI (``pulumi stack output --json``).

The CLI call sits behind a :class:`StackReader` (:class:`PulumiCli` unless the caller passes another, as
tests do through :class:`popctl.cli.Context`). :func:`read_outputs` validates the raw outputs (names as
in docs/CONTRACTS.md) into :class:`StackOutputs`. Secret outputs are only in clear text when asked for
with ``show_secrets``; otherwise Pulumi prints ``[secret]`` and :attr:`StackOutputs.client_secret` is None.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from mscloud.clouds import POP3_PORT
from mscloud.errors import Pop3OAuthError

PROJECT_DIR = Path(__file__).resolve().parent.parent
SECRET_PLACEHOLDER = "[secret]"  # noqa: S105 - what Pulumi prints instead of a secret


class StackError(Pop3OAuthError):
    """The outputs could not be read, or lack what the command needs; the message says what to do."""


class StackReader(Protocol):
    def __call__(self, stack: str, *, show_secrets: bool) -> Mapping[str, Any]:
        """The stack's outputs as Pulumi prints them with ``--json``; raises :class:`StackError`."""
        ...


@dataclass(frozen=True)
class PulumiCli:
    """Runs ``pulumi stack output --json [--show-secrets] --stack NAME`` in ``project_dir``."""

    project_dir: Path = PROJECT_DIR
    executable: str = "pulumi"
    timeout: float = 120.0

    def __call__(self, stack: str, *, show_secrets: bool) -> Mapping[str, Any]:
        command = [self.executable, "stack", "output", "--json", "--non-interactive"]
        if show_secrets:
            command.append("--show-secrets")
        command += ["--stack", stack]
        try:
            completed = subprocess.run(
                command,
                cwd=self.project_dir,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError:
            raise StackError(
                f"the Pulumi CLI ({self.executable!r}) is not installed or not on PATH; install it "
                "(https://www.pulumi.com/docs/install/) or pass --tenant-id, --client-id and --mailbox "
                "instead of --stack"
            ) from None
        except subprocess.TimeoutExpired:
            raise StackError(f"`pulumi stack output` did not finish within {self.timeout:g} s") from None
        if completed.returncode != 0:
            lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
            reason = lines[-1] if lines else f"exit code {completed.returncode}"
            raise StackError(f"`pulumi stack output --stack {stack}` failed: {reason}")
        try:
            outputs = json.loads(completed.stdout)
        except json.JSONDecodeError:
            raise StackError("`pulumi stack output --json` printed something that is not JSON") from None
        if not isinstance(outputs, dict):
            raise StackError("`pulumi stack output --json` did not print a JSON object")
        return outputs


@dataclass(frozen=True)
class SecretInfo:
    key_id: str
    display_name: str | None
    slot: int | None
    created_at: str | None
    expires_at: str | None
    managed: bool


@dataclass(frozen=True)
class StackOutputs:
    """The outputs popctl uses. ``client_secret`` is None unless read with ``show_secrets``."""

    stack: str
    tenant_id: str
    client_id: str
    mailboxes: tuple[str, ...]
    service_principal_object_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    client_secret_expires_at: str | None = None
    next_secret_rotation_at: str | None = None
    secrets: tuple[SecretInfo, ...] = ()
    pop3_host: str | None = None
    pop3_port: int = POP3_PORT
    use_tls: bool = True
    token_endpoint: str | None = None
    token_scope: str | None = None
    cloud: str | None = None

    @property
    def authority_host(self) -> str | None:
        """The authority host the token endpoint lives on (``https://login.microsoftonline.com``)."""
        if not self.token_endpoint:
            return None
        parts = urlsplit(self.token_endpoint)
        if not parts.scheme or not parts.netloc:
            return None
        suffix = f"/{self.tenant_id}/oauth2/v2.0/token"
        path = parts.path[: -len(suffix)] if parts.path.lower().endswith(suffix.lower()) else ""
        return f"{parts.scheme}://{parts.netloc}{path}".rstrip("/")


def read_outputs(
    stack: str, *, show_secrets: bool = False, reader: StackReader | None = None
) -> StackOutputs:
    """Read and validate ``stack``'s outputs with ``reader`` (the Pulumi CLI); raises :class:`StackError`."""
    return parse_outputs(stack, (reader or PulumiCli())(stack, show_secrets=show_secrets))


def parse_outputs(stack: str, raw: Mapping[str, Any]) -> StackOutputs:
    """Validate raw ``pulumi stack output --json`` data; errors name the missing or malformed output."""
    concept = raw.get("conceptOffice")
    concept = concept if isinstance(concept, Mapping) else {}
    secret = raw.get("clientSecret")
    port = raw.get("pop3Port", POP3_PORT)
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise StackError(f"stack {stack}: output pop3Port must be a port number, got {port!r}")
    use_tls = concept.get("useTls", True)
    return StackOutputs(
        stack=stack,
        tenant_id=_required_text(stack, raw, "tenantId"),
        client_id=_required_text(stack, raw, "clientId"),
        mailboxes=_mailboxes(stack, raw.get("mailboxes")),
        service_principal_object_id=_optional_text(raw.get("servicePrincipalObjectId")),
        client_secret=secret if isinstance(secret, str) and secret and secret != SECRET_PLACEHOLDER else None,
        client_secret_expires_at=_optional_text(raw.get("clientSecretExpiresAt")),
        next_secret_rotation_at=_optional_text(raw.get("nextSecretRotationAt")),
        secrets=tuple(_secret_info(item) for item in raw.get("secrets") or () if isinstance(item, Mapping)),
        pop3_host=_optional_text(raw.get("pop3Host")),
        pop3_port=port,
        use_tls=use_tls if isinstance(use_tls, bool) else True,
        token_endpoint=_optional_text(raw.get("tokenEndpoint")),
        token_scope=_optional_text(raw.get("tokenScope")),
        cloud=_optional_text(raw.get("cloud")),
    )


def _required_text(stack: str, raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        raise StackError(
            f"stack {stack} has no output {name!r}; run `pulumi up` first (is this a pop3-oauth stack?)"
        )
    return value.strip()


def _optional_text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() and value != SECRET_PLACEHOLDER else None


def _mailboxes(stack: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise StackError(f"stack {stack}: output mailboxes must be a list of addresses, got {value!r}")
    return tuple(item.strip() for item in value if item.strip())


def _secret_info(item: Mapping[str, Any]) -> SecretInfo:
    slot = item.get("slot")
    return SecretInfo(
        key_id=str(item.get("keyId") or ""),
        display_name=_optional_text(item.get("displayName")),
        slot=slot if isinstance(slot, int) and not isinstance(slot, bool) else None,
        created_at=_optional_text(item.get("createdAt")),
        expires_at=_optional_text(item.get("expiresAt")),
        managed=bool(item.get("managed", True)),
    )
