"""What ``popctl verify`` checks and where: command line, environment and stack outputs, combined.

Command-line values win over the environment, and the environment over the stack's outputs. The client
secret comes only from ``POP3_OAUTH_CLIENT_SECRET`` or the stack, never from the command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from components.outputs import StackOutputs
from mscloud.clouds import AUTHORITY_HOST_ENV, DEFAULT_CLOUD, POP3_PORT, Cloud, normalise_base_url
from popctl import stack, values
from popctl.errors import UsageError

SECRET_ENV = "POP3_OAUTH_CLIENT_SECRET"  # noqa: S105 - a variable name
POP3_HOST_ENV = "POP3_OAUTH_POP3_HOST"
POP3_PORT_ENV = "POP3_OAUTH_POP3_PORT"


@dataclass(frozen=True)
class TargetOptions:
    """The command line's say on what to verify and where (None: not given)."""

    stack: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    mailboxes: tuple[str, ...] = ()
    service_principal_object_id: str | None = None
    cloud: str | None = None
    pop3_host: str | None = None
    pop3_port: int | None = None
    authority_host: str | None = None
    scope: str | None = None
    ca_file: Path | None = None


@dataclass(frozen=True)
class Target:
    """What to verify and where. URLs carry a scheme and no trailing slash."""

    tenant_id: str
    client_id: str
    mailboxes: tuple[str, ...]
    pop3_host: str
    pop3_port: int
    authority_host: str
    scope: str
    cloud: Cloud
    ca_file: Path | None = None
    service_principal_object_id: str | None = None

    @property
    def token_cloud(self) -> Cloud:
        """The cloud with the authority host tokens are requested from."""
        return replace(self.cloud, authority_host=self.authority_host)


def resolve_target(
    options: TargetOptions, environ: Mapping[str, str], *, read_stack: stack.StackReader | None = None
) -> tuple[Target, str]:
    """Combine command line, environment and stack outputs (in that order of precedence).

    Returns the target and the client secret; raises UsageError (or StackError) for anything missing or
    malformed, the client secret included.
    """
    env_secret = environ.get(SECRET_ENV, "")
    outputs: StackOutputs | None = None
    if options.stack:
        outputs = stack.read_outputs(options.stack, show_secrets=not env_secret, reader=read_stack)
    cloud_name = options.cloud or (outputs.cloud if outputs else None) or DEFAULT_CLOUD
    cloud = values.cloud(cloud_name, environ)
    tenant_id = options.tenant_id or (outputs.tenant_id if outputs else None)
    client_id = options.client_id or (outputs.client_id if outputs else None)
    mailboxes = options.mailboxes or (outputs.mailboxes if outputs else ())
    if not tenant_id or not client_id or not mailboxes:
        raise UsageError("give --stack NAME, or --tenant-id, --client-id and at least one --mailbox")
    secret = env_secret or (outputs.client_secret if outputs else None)
    if not secret:
        raise UsageError(
            f"no client secret: set the environment variable {SECRET_ENV} "
            "(never pass a secret on the command line)"
            + (f", or make sure stack {options.stack} has the clientSecret output" if options.stack else "")
        )
    port = options.pop3_port or _env_port(environ) or (outputs.pop3_port if outputs else POP3_PORT)
    if not 0 < port < 65536:
        raise UsageError(f"--pop3-port must be 1-65535, got {port}")
    if options.ca_file is not None and not options.ca_file.is_file():
        raise UsageError(f"--ca-file {options.ca_file}: no such file")
    authority_host = _authority_host(options, environ, cloud, outputs)
    target = Target(
        tenant_id=tenant_id,
        client_id=client_id,
        mailboxes=mailboxes,
        pop3_host=options.pop3_host
        or environ.get(POP3_HOST_ENV, "").strip()
        or (outputs.pop3_host if outputs else None)
        or cloud.pop3_host,
        pop3_port=port,
        authority_host=authority_host,
        scope=options.scope or (outputs.token_scope if outputs else None) or cloud.exchange_scope,
        cloud=replace(cloud, authority_host=authority_host),
        ca_file=options.ca_file,
        service_principal_object_id=options.service_principal_object_id
        or (outputs.service_principal_object_id if outputs else None),
    )
    return target, secret


def _env_port(environ: Mapping[str, str]) -> int | None:
    text = environ.get(POP3_PORT_ENV, "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise UsageError(f"{POP3_PORT_ENV} must be a port number, got {text!r}")
    return int(text)


def _authority_host(
    options: TargetOptions, environ: Mapping[str, str], cloud: Cloud, outputs: StackOutputs | None
) -> str:
    if options.authority_host:
        try:
            return normalise_base_url(options.authority_host, "--authority-host")
        except ValueError as error:
            raise UsageError(str(error)) from None
    if environ.get(AUTHORITY_HOST_ENV, "").strip():
        return cloud.authority_host
    if outputs is not None and outputs.authority_host:
        return outputs.authority_host
    return cloud.authority_host
