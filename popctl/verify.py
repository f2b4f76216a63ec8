"""``popctl verify``: prove that the app can log in to each mailbox with POP3 and XOAUTH2.

Per mailbox: a fresh app-only token (msal client credentials), a check of its claims (tenant, audience,
``roles`` containing POP.AccessAsApp) without showing it, a POP3-over-TLS login in the two-step XOAUTH2
form, ``STAT``, ``QUIT``. Every failure is reported as a :class:`Cause` with a remedy. With ``--wait`` the
failures that can be propagation delays are retried with a bounded backoff until the deadline; with
``--admin`` a refused login is explained from the Exchange side (registration, FullAccess, POP enabled).

Exit status: 0 when every mailbox passed, 1 when any failed, 2 for usage errors. The client secret comes
only from ``POP3_OAUTH_CLIENT_SECRET`` or the stack; neither it nor a token is ever printed.
"""

from __future__ import annotations

import argparse
import os
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from components.clouds import (
    AUTHORITY_HOST_ENV,
    CLOUDS,
    POP3_PORT,
    Cloud,
    get_cloud,
    normalise_base_url,
)
from components.exchange.auth import AuthError, shared_token_source
from components.exchange.client import ExchangeClient, ExchangeError
from popctl import report, stack
from popctl.cli import EXIT_FAILED, EXIT_OK, UsageError
from popctl.pop3 import (
    DEFAULT_TIMEOUT,
    ConnectFailure,
    MailboxStatus,
    Pop3ConnectError,
    Pop3LoginRefused,
    Pop3ProtocolError,
    Pop3TlsError,
    read_mailbox_status,
)
from popctl.tokens import (
    AppTokenRequest,
    ClaimProblem,
    TokenClaims,
    TokenFailure,
    TokenFailureKind,
    acquire_app_token,
)

SECRET_ENV = "POP3_OAUTH_CLIENT_SECRET"  # noqa: S105 - a variable name


class Cause(StrEnum):
    """Why a mailbox failed; the values are the ``cause`` field of ``--json``."""

    UNKNOWN_TENANT = "unknown-tenant"
    UNKNOWN_APP = "unknown-app"
    INVALID_SECRET = "invalid-secret"  # noqa: S105
    EXPIRED_SECRET = "expired-secret"  # noqa: S105
    WRONG_SCOPE = "wrong-scope"
    TOKEN_ENDPOINT_UNREACHABLE = "token-endpoint-unreachable"  # noqa: S105
    TOKEN_REQUEST_FAILED = "token-request-failed"  # noqa: S105
    WRONG_TENANT = "wrong-tenant"
    WRONG_AUDIENCE = "wrong-audience"
    CONSENT_MISSING = "consent-missing"
    TOKEN_EXPIRED = "token-expired"  # noqa: S105
    LOGIN_REFUSED = "login-refused"
    REGISTRATION_MISSING = "exchange-registration-missing"
    REGISTRATION_WRONG_OBJECT = "exchange-registration-wrong-object"
    FULLACCESS_MISSING = "fullaccess-missing"
    POP_DISABLED = "pop-disabled"
    MAILBOX_NOT_FOUND = "mailbox-not-found"
    TLS_FAILURE = "tls-failure"
    CONNECTION_REFUSED = "connection-refused"
    CONNECTION_TIMEOUT = "connection-timeout"
    HOST_NOT_FOUND = "host-not-found"
    PROTOCOL_ERROR = "protocol-error"


REMEDIES: Mapping[Cause, str] = {
    Cause.UNKNOWN_TENANT: (
        "Check the tenant id (Entra admin center > Overview > Tenant ID) and the cloud / --authority-host."
    ),
    Cause.UNKNOWN_APP: (
        "Check the client id; an app registered moments ago can take a few minutes to appear "
        "(retry with --wait 300)."
    ),
    Cause.INVALID_SECRET: (
        "Use the secret's value, not its id; a secret created moments ago can take a few minutes to work "
        "(--wait 300). Otherwise take the current secret from `popctl handoff --show-secret`."
    ),
    Cause.EXPIRED_SECRET: (
        "The client secret has expired: run `pulumi up` to rotate it, then hand the new secret over "
        "(`popctl handoff --show-secret`)."
    ),
    Cause.WRONG_SCOPE: (
        "Use the Exchange Online scope (https://outlook.office365.com/.default in the public cloud), "
        "not Graph's."
    ),
    Cause.TOKEN_ENDPOINT_UNREACHABLE: (
        "Check network access to the authority host (HTTPS, port 443) and --authority-host."
    ),
    Cause.TOKEN_REQUEST_FAILED: (
        "Read the AADSTS code in the detail and look it up at https://login.microsoftonline.com/error."
    ),
    Cause.WRONG_TENANT: "The token was issued by another tenant: pass the customer's tenant id.",
    Cause.WRONG_AUDIENCE: (
        "Request the token for Exchange Online "
        "(--scope https://outlook.office365.com/.default in the public cloud)."
    ),
    Cause.CONSENT_MISSING: (
        "Grant admin consent for Office 365 Exchange Online / POP.AccessAsApp (`pulumi up` creates the "
        "role assignment); a new consent can take minutes to reach tokens (--wait 600)."
    ),
    Cause.TOKEN_EXPIRED: (
        "The token was already expired when it reached the server: check the clocks of this machine "
        "(timedatectl) and of the server."
    ),
    Cause.LOGIN_REFUSED: (
        "Check in Exchange: the app's service principal registered with the enterprise application's "
        "object id (Get-ServicePrincipal), FullAccess on the mailbox (Get-MailboxPermission), POP enabled "
        "(Get-CASMailbox). Fresh changes take up to 30 minutes (--wait 1800); `--admin` tells these apart."
    ),
    Cause.REGISTRATION_MISSING: (
        "Register the app in Exchange: `pulumi up`, or New-ServicePrincipal -AppId <client id> "
        "-ObjectId <service principal object id>."
    ),
    Cause.REGISTRATION_WRONG_OBJECT: (
        "Remove the registration (Remove-ServicePrincipal) and register again with the enterprise "
        "application's (service principal's) object id, not the app registration's; `pulumi up` does this."
    ),
    Cause.FULLACCESS_MISSING: (
        "Grant FullAccess: `pulumi up`, or Add-MailboxPermission -Identity <mailbox> "
        "-User <service principal> -AccessRights FullAccess."
    ),
    Cause.POP_DISABLED: "Enable POP for the mailbox: Set-CASMailbox -Identity <mailbox> -PopEnabled $true.",
    Cause.MAILBOX_NOT_FOUND: (
        "Check the mailbox address; it must be an Exchange Online mailbox in this tenant."
    ),
    Cause.TLS_FAILURE: (
        "The certificate is not trusted or TLS failed: check the host name, a TLS-inspecting proxy, "
        "and --ca-file."
    ),
    Cause.CONNECTION_REFUSED: (
        "Nothing accepts connections there: check --pop3-host and --pop3-port (POP3 over TLS is port 995)."
    ),
    Cause.CONNECTION_TIMEOUT: (
        "No answer: a firewall probably blocks outgoing port 995; open it towards the POP3 server."
    ),
    Cause.HOST_NOT_FOUND: "The host name does not resolve: check --pop3-host and DNS.",
    Cause.PROTOCOL_ERROR: (
        "The server does not behave like a POP3 server: check --pop3-host and --pop3-port."
    ),
}

PROPAGATION_CAUSES = frozenset(
    {Cause.UNKNOWN_APP, Cause.INVALID_SECRET, Cause.CONSENT_MISSING, Cause.LOGIN_REFUSED}
)
"""Failures that can be propagation delays after `pulumi up`, and so are retried within ``--wait``."""

_TOKEN_CAUSES: Mapping[TokenFailureKind, Cause] = {
    TokenFailureKind.UNKNOWN_TENANT: Cause.UNKNOWN_TENANT,
    TokenFailureKind.UNKNOWN_APP: Cause.UNKNOWN_APP,
    TokenFailureKind.INVALID_SECRET: Cause.INVALID_SECRET,
    TokenFailureKind.EXPIRED_SECRET: Cause.EXPIRED_SECRET,
    TokenFailureKind.INVALID_SCOPE: Cause.WRONG_SCOPE,
    TokenFailureKind.ENDPOINT_TLS: Cause.TLS_FAILURE,
    TokenFailureKind.ENDPOINT_UNREACHABLE: Cause.TOKEN_ENDPOINT_UNREACHABLE,
    TokenFailureKind.MALFORMED_TOKEN: Cause.TOKEN_REQUEST_FAILED,
    TokenFailureKind.OTHER: Cause.TOKEN_REQUEST_FAILED,
}

_CONNECT_CAUSES: Mapping[ConnectFailure, Cause] = {
    ConnectFailure.REFUSED: Cause.CONNECTION_REFUSED,
    ConnectFailure.TIMEOUT: Cause.CONNECTION_TIMEOUT,
    ConnectFailure.UNRESOLVED: Cause.HOST_NOT_FOUND,
    ConnectFailure.NETWORK: Cause.CONNECTION_REFUSED,
}


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


@dataclass(frozen=True)
class Failure:
    """One failed attempt: the cause, a safe one-line detail, and the AADSTS codes if any."""

    cause: Cause
    detail: str
    aadsts: tuple[int, ...] = ()


@dataclass(frozen=True)
class Backoff:
    """Delays between retries: ``initial`` growing by ``factor`` up to ``maximum`` seconds."""

    initial: float = 2.0
    factor: float = 2.0
    maximum: float = 30.0

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay
            delay = min(delay * self.factor, self.maximum)


DEFAULT_BACKOFF = Backoff()


@dataclass(frozen=True)
class RetryNotice:
    """Told to the progress callback before each wait: what failed and when the next attempt comes."""

    mailbox: str
    attempt: int
    cause: Cause
    delay: float
    remaining: float


@dataclass
class MailboxResult:
    """The verdict for one mailbox; :meth:`as_json` is one line of ``--json``."""

    mailbox: str
    ok: bool
    messages: int | None = None
    octets: int | None = None
    cause: Cause | None = None
    detail: str | None = None
    aadsts: tuple[int, ...] = ()
    attempts: int = 1
    seconds: float = 0.0
    findings: list[str] = field(default_factory=list)

    @property
    def remedy(self) -> str | None:
        return REMEDIES[self.cause] if self.cause is not None else None

    def as_json(self) -> dict[str, Any]:
        return {
            "mailbox": self.mailbox,
            "ok": self.ok,
            "messages": self.messages,
            "octets": self.octets,
            "cause": self.cause.value if self.cause is not None else None,
            "remedy": self.remedy,
            "detail": self.detail,
            "aadsts": list(self.aadsts),
            "attempts": self.attempts,
            "seconds": round(self.seconds, 3),
            "findings": list(self.findings),
        }


TokenAcquirer = Callable[[AppTokenRequest, str], str]


class MailboxLogin(Protocol):
    def __call__(
        self, host: str, port: int, user: str, token: str, *, context: ssl.SSLContext, timeout: float
    ) -> MailboxStatus: ...


class ExchangeReader(Protocol):
    """The read-only part of :class:`components.exchange.client.ExchangeClient` that ``--admin`` uses."""

    def get_service_principal(self, identity: str) -> dict[str, Any] | None: ...

    def get_mailbox_permissions(self, mailbox: str, user: str | None = None) -> list[dict[str, Any]]: ...

    def get_cas_mailbox(self, mailbox: str) -> dict[str, Any] | None: ...


class Verifier:
    """Checks mailboxes of one :class:`Target` with one secret.

    ``acquire``, ``login``, ``clock`` and ``sleep`` are seams for tests; ``backoff`` defaults to
    :data:`DEFAULT_BACKOFF` as it is at construction; ``on_retry`` is told about every wait (the
    progress line).
    """

    def __init__(
        self,
        target: Target,
        secret: str,
        *,
        acquire: TokenAcquirer = acquire_app_token,
        login: MailboxLogin = read_mailbox_status,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[RetryNotice], None] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.target = target
        self._secret = secret
        self._acquire = acquire
        self._login = login
        self._backoff = backoff or DEFAULT_BACKOFF
        self._clock = clock
        self._sleep = sleep
        self._on_retry = on_retry
        self._timeout = timeout
        self.tls_context = ssl.create_default_context(cafile=str(target.ca_file) if target.ca_file else None)

    def __repr__(self) -> str:
        return f"Verifier({self.target!r})"

    def verify(self, mailbox: str, *, wait: float = 0.0) -> MailboxResult:
        """Check ``mailbox``; retry propagation failures with backoff until ``wait`` seconds have passed."""
        started = self._clock()
        deadline = started + wait
        delays = self._backoff.delays()
        attempt = 0
        while True:
            attempt += 1
            outcome = self.attempt(mailbox)
            elapsed = self._clock() - started
            if isinstance(outcome, MailboxStatus):
                return MailboxResult(
                    mailbox, True, outcome.messages, outcome.octets, attempts=attempt, seconds=elapsed
                )
            remaining = deadline - self._clock()
            if wait <= 0 or outcome.cause not in PROPAGATION_CAUSES or remaining <= 0:
                detail = outcome.detail
                if wait > 0 and outcome.cause in PROPAGATION_CAUSES:
                    detail += f" (still failing after {attempt} attempts in {elapsed:.0f} s)"
                return MailboxResult(
                    mailbox,
                    False,
                    cause=outcome.cause,
                    detail=detail,
                    aadsts=outcome.aadsts,
                    attempts=attempt,
                    seconds=elapsed,
                )
            delay = min(next(delays), remaining)
            if self._on_retry is not None:
                self._on_retry(RetryNotice(mailbox, attempt, outcome.cause, delay, remaining))
            self._sleep(delay)

    def attempt(self, mailbox: str) -> MailboxStatus | Failure:
        """One try: a fresh token, its claims, the POP3 login and STAT."""
        target = self.target
        request = AppTokenRequest(
            target.tenant_id, target.client_id, target.authority_host, target.scope, target.ca_file
        )
        try:
            token = self._acquire(request, self._secret)
            claims = TokenClaims.from_token(token)
        except TokenFailure as failure:
            return Failure(_TOKEN_CAUSES[failure.kind], failure.detail, failure.aadsts)
        problems = claims.problems(tenant_id=target.tenant_id, scope=target.scope)
        refusal = _claims_failure(claims, problems, target)
        if refusal is not None:
            return refusal
        where = f"{target.pop3_host}:{target.pop3_port}"
        try:
            return self._login(
                target.pop3_host,
                target.pop3_port,
                mailbox,
                token,
                context=self.tls_context,
                timeout=self._timeout,
            )
        except Pop3LoginRefused as refused:
            if ClaimProblem.EXPIRED in problems:
                return Failure(Cause.TOKEN_EXPIRED, f"{where} refused a token whose exp claim has passed")
            return Failure(Cause.LOGIN_REFUSED, f"{where}: {refused.reply}")
        except Pop3TlsError as error:
            return Failure(Cause.TLS_FAILURE, str(error))
        except Pop3ConnectError as error:
            return Failure(_CONNECT_CAUSES[error.kind], str(error))
        except Pop3ProtocolError as error:
            return Failure(Cause.PROTOCOL_ERROR, str(error))


def _claims_failure(claims: TokenClaims, problems: Sequence[ClaimProblem], target: Target) -> Failure | None:
    """The failure the claims make certain (Office 365 refuses such a token), or None."""
    if ClaimProblem.WRONG_TENANT in problems:
        return Failure(
            Cause.WRONG_TENANT, f"token tenant (tid) is {claims.tenant_id}, expected {target.tenant_id}"
        )
    if ClaimProblem.WRONG_AUDIENCE in problems:
        audiences = ", ".join(claims.audiences) or "none"
        return Failure(
            Cause.WRONG_AUDIENCE,
            f"token audience is {audiences}, expected {target.scope.removesuffix('/.default')}",
        )
    if ClaimProblem.ROLE_MISSING in problems:
        roles = ", ".join(claims.roles) or "none"
        return Failure(Cause.CONSENT_MISSING, f"the token's roles ({roles}) lack POP.AccessAsApp")
    return None


def diagnose_refused_login(
    exchange: ExchangeReader,
    *,
    mailbox: str,
    client_id: str,
    service_principal_object_id: str | None,
) -> tuple[Cause | None, list[str]]:
    """Explain a refused POP3 login from Exchange's side.

    Returns the first cause found (registration missing or pointing at the wrong object id, FullAccess
    missing, mailbox missing, POP disabled) - or None when Exchange looks right - and one finding per
    check. Raises ExchangeError or AuthError when Exchange cannot be read.
    """
    findings: list[str] = []
    causes: list[Cause] = []
    registration = exchange.get_service_principal(client_id)
    names = {client_id.lower()}
    if service_principal_object_id:
        names.add(service_principal_object_id.lower())
    if registration is None:
        causes.append(Cause.REGISTRATION_MISSING)
        findings.append(f"Exchange has no service principal for app {client_id}")
    else:
        registered = str(registration.get("ObjectId") or registration.get("Identity") or "")
        names |= {
            str(registration.get(key) or "").lower()
            for key in ("Identity", "ObjectId", "AppId", "DisplayName")
        }
        if service_principal_object_id is None:
            findings.append(
                f"registration found (ObjectId {registered}); its object id was not compared "
                "(pass --stack or --service-principal-object-id)"
            )
        elif registered.lower() != service_principal_object_id.lower():
            causes.append(Cause.REGISTRATION_WRONG_OBJECT)
            findings.append(
                f"Exchange registration points at object id {registered}, but the service principal's "
                f"is {service_principal_object_id} ({registered} is most likely the app registration's "
                "object id)"
            )
        else:
            findings.append(f"registration points at the service principal {registered}")
    names.discard("")
    cas = exchange.get_cas_mailbox(mailbox)
    if cas is None:
        causes.append(Cause.MAILBOX_NOT_FOUND)
        findings.append(f"Exchange has no mailbox {mailbox}")
        return causes[0], findings
    if not _has_full_access(exchange.get_mailbox_permissions(mailbox), names):
        causes.append(Cause.FULLACCESS_MISSING)
        findings.append(f"the app has no FullAccess on {mailbox}")
    else:
        findings.append(f"the app has FullAccess on {mailbox}")
    if cas.get("PopEnabled") is False:
        causes.append(Cause.POP_DISABLED)
        findings.append(f"POP is disabled for {mailbox}")
    else:
        findings.append(f"POP is enabled for {mailbox}")
    return (causes[0] if causes else None), findings


def _has_full_access(entries: Sequence[Mapping[str, Any]], names: set[str]) -> bool:
    granted = False
    for entry in entries:
        user = str(entry.get("User") or "").lower()
        if user not in names:
            continue
        if "FullAccess" in (entry.get("AccessRights") or ()):
            if entry.get("Deny") is True:
                return False
            granted = True
    return granted


def exchange_reader(tenant_id: str, cloud: Cloud) -> ExchangeReader:
    """An Exchange admin client for ``tenant_id`` using ARM_* credentials or the ``popctl login`` cache."""
    return ExchangeClient(tenant_id, cloud, shared_token_source(), max_retry_seconds=30.0)


exchange_reader_factory: Callable[[str, Cloud], ExchangeReader] = exchange_reader
"""The seam ``--admin`` goes through (tests substitute a client bound to their fakes)."""


def explain_with_admin(result: MailboxResult, target: Target, exchange: ExchangeReader) -> None:
    """Refine a ``login-refused`` result in place from Exchange's configuration."""
    try:
        cause, findings = diagnose_refused_login(
            exchange,
            mailbox=result.mailbox,
            client_id=target.client_id,
            service_principal_object_id=target.service_principal_object_id,
        )
    except (ExchangeError, AuthError) as error:
        result.findings.append(f"admin check not possible: {error}")
        return
    result.findings.extend(findings)
    if cause is not None:
        result.cause = cause
    else:
        result.findings.append(
            "Exchange looks right: the refusal is most likely replication of a recent change (use --wait)"
        )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="log in to each mailbox with POP3 + XOAUTH2 and report what is missing",
        description="Prove that the app can log in to each mailbox with POP3 and XOAUTH2.",
        epilog=f"The client secret is read from ${SECRET_ENV} (or the stack), never from the command line.",
    )
    source = parser.add_argument_group("what to verify")
    source.add_argument("--stack", help="read tenant, app, mailboxes, endpoints and secret from this stack")
    source.add_argument("--tenant-id", help="the customer's tenant id (Verzeichnis-ID)")
    source.add_argument("--client-id", help="the app's client (application) id")
    source.add_argument(
        "--mailbox", action="append", metavar="ADDRESS", help="mailbox to check; repeat for more"
    )
    source.add_argument(
        "--service-principal-object-id", help="the enterprise application's object id (for --admin)"
    )
    where = parser.add_argument_group("endpoints")
    where.add_argument("--cloud", choices=sorted(CLOUDS), help="the Microsoft cloud (default public)")
    where.add_argument("--pop3-host", help="POP3 server (default outlook.office365.com)")
    where.add_argument("--pop3-port", type=int, help=f"POP3-over-TLS port (default {POP3_PORT})")
    where.add_argument(
        "--authority-host", help=f"Entra authority URL (default the cloud's; env {AUTHORITY_HOST_ENV})"
    )
    where.add_argument("--scope", help="token scope (default the cloud's Exchange scope)")
    where.add_argument("--ca-file", type=Path, help="CA bundle (PEM) for the POP3 server and token endpoint")
    behaviour = parser.add_argument_group("behaviour")
    behaviour.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="retry failures that can be propagation delays until this many seconds have passed",
    )
    behaviour.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="network timeout in seconds"
    )
    behaviour.add_argument("--json", action="store_true", help="one JSON object per mailbox per line")
    behaviour.add_argument(
        "--admin", action="store_true", help="explain refused logins from Exchange (needs admin credentials)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The ``verify`` command; returns the exit status."""
    target, secret = resolve_target(args, os.environ)
    console = report.Reporter(json_lines=args.json)
    verifier = Verifier(target, secret, on_retry=console.retrying, timeout=args.timeout)
    exchange: ExchangeReader | None = None
    results: list[MailboxResult] = []
    for mailbox in target.mailboxes:
        console.checking(mailbox, target)
        result = verifier.verify(mailbox, wait=args.wait)
        if args.admin and result.cause is Cause.LOGIN_REFUSED:
            exchange = exchange or exchange_reader_factory(target.tenant_id, target.cloud)
            explain_with_admin(result, target, exchange)
        console.result(result)
        results.append(result)
    console.summary(results)
    return EXIT_OK if all(result.ok for result in results) else EXIT_FAILED


def resolve_target(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[Target, str]:
    """Combine command line, environment and stack outputs (in that order of precedence).

    Raises UsageError for anything missing or malformed, the client secret included.
    """
    if args.wait < 0:
        raise UsageError("--wait must be zero or more seconds")
    env_secret = environ.get(SECRET_ENV, "")
    outputs: stack.StackOutputs | None = None
    if args.stack:
        try:
            outputs = stack.read_outputs(args.stack, show_secrets=not env_secret)
        except stack.StackError as error:
            raise UsageError(str(error)) from None
    cloud_name = args.cloud or (outputs.cloud if outputs else None) or "public"
    try:
        cloud = get_cloud(cloud_name).with_overrides(environ)
    except KeyError:
        raise UsageError(f"unknown cloud {cloud_name!r}; one of {', '.join(sorted(CLOUDS))}") from None
    except ValueError as error:
        raise UsageError(str(error)) from None
    tenant_id = args.tenant_id or (outputs.tenant_id if outputs else None)
    client_id = args.client_id or (outputs.client_id if outputs else None)
    mailboxes = tuple(args.mailbox or (outputs.mailboxes if outputs else ()))
    if not tenant_id or not client_id or not mailboxes:
        raise UsageError("give --stack NAME, or --tenant-id, --client-id and at least one --mailbox")
    secret = env_secret or (outputs.client_secret if outputs else None)
    if not secret:
        raise UsageError(
            f"no client secret: set the environment variable {SECRET_ENV} "
            "(never pass a secret on the command line)"
            + (f", or make sure stack {args.stack} has the clientSecret output" if args.stack else "")
        )
    port = args.pop3_port or (outputs.pop3_port if outputs else POP3_PORT)
    if not 0 < port < 65536:
        raise UsageError(f"--pop3-port must be 1-65535, got {port}")
    if args.ca_file is not None and not args.ca_file.is_file():
        raise UsageError(f"--ca-file {args.ca_file}: no such file")
    target = Target(
        tenant_id=tenant_id,
        client_id=client_id,
        mailboxes=mailboxes,
        pop3_host=args.pop3_host or (outputs.pop3_host if outputs else None) or cloud.pop3_host,
        pop3_port=port,
        authority_host=_authority_host(args, environ, cloud, outputs),
        scope=args.scope or (outputs.token_scope if outputs else None) or cloud.exchange_scope,
        cloud=cloud,
        ca_file=args.ca_file,
        service_principal_object_id=args.service_principal_object_id
        or (outputs.service_principal_object_id if outputs else None),
    )
    return replace(target, cloud=replace(cloud, authority_host=target.authority_host)), secret


def _authority_host(
    args: argparse.Namespace, environ: Mapping[str, str], cloud: Cloud, outputs: stack.StackOutputs | None
) -> str:
    if args.authority_host:
        try:
            return normalise_base_url(args.authority_host, "--authority-host")
        except ValueError as error:
            raise UsageError(str(error)) from None
    if environ.get(AUTHORITY_HOST_ENV, "").strip():
        return cloud.authority_host
    if outputs is not None and outputs.authority_host:
        return outputs.authority_host
    return cloud.authority_host
