"""The stack outputs: one typed contract for the program that exports them and everything that reads them.

Pulumi-free, so ``popctl`` (stack, handoff, verify, fleet) and the workflows' scripts import it too. The
program builds its ``secrets`` entries with :meth:`SecretRecord.to_output`; readers turn ``pulumi stack
output --json`` into :class:`StackOutputs` with :meth:`StackOutputs.from_output`. Names and meanings: the
README's outputs reference. Secret outputs (:data:`SECRET_OUTPUTS`) are ``[secret]`` unless read with
``--show-secrets``; they are then None here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mscloud.clouds import CLOUDS, DEFAULT_CLOUD, POP3_PORT

SECRET_PLACEHOLDER = "[secret]"  # noqa: S105 - what Pulumi prints instead of a secret
SECRET_OUTPUTS = frozenset({"clientSecret", "conceptOffice"})
OUTPUT_NAMES = (
    "tenantId",
    "clientId",
    "servicePrincipalObjectId",
    "clientSecret",
    "clientSecretExpiresAt",
    "nextSecretRotationAt",
    "secrets",
    "mailboxes",
    "pop3Host",
    "pop3Port",
    "tokenEndpoint",
    "tokenScope",
    "authorityHost",
    "cloud",
    "conceptOffice",
    "secretSchedule",
)
SECRET_STATUSES = ("current", "previous", "retiring", "adopted")


class OutputsError(ValueError):
    """The outputs lack what the reader needs, or hold something malformed; the message names the output."""


@dataclass(frozen=True)
class SecretRecord:
    """One entry of the ``secrets`` output: a client secret's metadata, never its value.

    Dates are RFC 3339 text as exported (``components.settings.to_rfc3339``); ``slot`` and ``created_at`` are
    None for a hand-made (adopted) secret; ``status`` is one of :data:`SECRET_STATUSES`.
    """

    key_id: str
    display_name: str | None
    slot: int | None
    created_at: str | None
    expires_at: str | None
    managed: bool
    status: str

    def to_output(self) -> dict[str, Any]:
        return {
            "keyId": self.key_id,
            "displayName": self.display_name,
            "slot": self.slot,
            "createdAt": self.created_at,
            "expiresAt": self.expires_at,
            "managed": self.managed,
            "status": self.status,
        }

    @classmethod
    def from_output(cls, item: Mapping[str, Any]) -> SecretRecord:
        slot = item.get("slot")
        managed = item.get("managed") is not False
        return cls(
            key_id=str(item.get("keyId") or ""),
            display_name=_text(item.get("displayName")),
            slot=slot if isinstance(slot, int) and not isinstance(slot, bool) else None,
            created_at=_text(item.get("createdAt")),
            expires_at=_text(item.get("expiresAt")),
            managed=managed,
            status=str(item.get("status") or ("unknown" if managed else "adopted")),
        )


def concept_office(
    tenant_id: str, client_id: str, client_secret: str, pop3_host: str, mailboxes: list[str]
) -> dict[str, Any]:
    """The ``conceptOffice`` output: everything "Externe Systeme" asks for (a secret output)."""
    return {
        "tenantId": tenant_id,
        "clientId": client_id,
        "clientSecret": client_secret,
        "pop3Host": pop3_host,
        "pop3Port": POP3_PORT,
        "useTls": True,
        "mailboxes": mailboxes,
    }


@dataclass(frozen=True)
class StackOutputs:
    """A stack's outputs as readers use them. ``client_secret`` is None unless read with show-secrets."""

    stack: str
    tenant_id: str
    client_id: str
    mailboxes: tuple[str, ...]
    service_principal_object_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    client_secret_expires_at: str | None = None
    next_secret_rotation_at: str | None = None
    secrets: tuple[SecretRecord, ...] = ()
    pop3_host: str | None = None
    pop3_port: int = POP3_PORT
    use_tls: bool = True
    token_endpoint: str | None = None
    token_scope: str | None = None
    authority_host: str | None = None
    cloud: str | None = None

    @classmethod
    def from_output(cls, stack: str, raw: Mapping[str, Any]) -> StackOutputs:
        """Validate raw ``pulumi stack output --json`` data; errors name the missing or malformed output.

        ``authorityHost`` is read as exported; stacks deployed before it existed get their cloud's.
        """
        concept = raw.get("conceptOffice")
        concept = concept if isinstance(concept, Mapping) else {}
        secret = raw.get("clientSecret")
        port = raw.get("pop3Port", POP3_PORT)
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise OutputsError(f"stack {stack}: output pop3Port must be a port number, got {port!r}")
        use_tls = concept.get("useTls", True)
        cloud = _text(raw.get("cloud"))
        authority_host = _text(raw.get("authorityHost"))
        if authority_host is None and (cloud or DEFAULT_CLOUD) in CLOUDS:
            authority_host = CLOUDS[cloud or DEFAULT_CLOUD].authority_host
        return cls(
            stack=stack,
            tenant_id=_required(stack, raw, "tenantId"),
            client_id=_required(stack, raw, "clientId"),
            mailboxes=_mailboxes(stack, raw.get("mailboxes")),
            service_principal_object_id=_text(raw.get("servicePrincipalObjectId")),
            client_secret=secret
            if isinstance(secret, str) and secret and secret != SECRET_PLACEHOLDER
            else None,
            client_secret_expires_at=_text(raw.get("clientSecretExpiresAt")),
            next_secret_rotation_at=_text(raw.get("nextSecretRotationAt")),
            secrets=tuple(
                SecretRecord.from_output(item)
                for item in raw.get("secrets") or ()
                if isinstance(item, Mapping)
            ),
            pop3_host=_text(raw.get("pop3Host")),
            pop3_port=port,
            use_tls=use_tls if isinstance(use_tls, bool) else True,
            token_endpoint=_text(raw.get("tokenEndpoint")),
            token_scope=_text(raw.get("tokenScope")),
            authority_host=authority_host,
            cloud=cloud,
        )


def _required(stack: str, raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        raise OutputsError(
            f"stack {stack} has no output {name!r}; run `pulumi up` first (is this a pop3-oauth stack?)"
        )
    return value.strip()


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() and value != SECRET_PLACEHOLDER else None


def _mailboxes(stack: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise OutputsError(f"stack {stack}: output mailboxes must be a list of addresses, got {value!r}")
    return tuple(item.strip() for item in value if item.strip())
