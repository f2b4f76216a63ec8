"""``popctl verify``: prove that the app can log in to each mailbox with POP3 and XOAUTH2.

Per mailbox: a fresh app-only token (:func:`mscloud.entra.fresh_app_token`), a check of its claims (tenant,
audience, ``roles`` containing POP.AccessAsApp) without showing it, a POP3-over-TLS login in the two-step
XOAUTH2 form, ``STAT``, ``QUIT``; with a ``max_age``, also the headers of up to ``date_limit``
messages (``TOP n 0``, never ``RETR`` or ``DELE``), failing the mailbox as ``mail-not-fetched`` when its
oldest message is older: an ERP that deletes what it fetches has stopped fetching. Every failure is named
with a :class:`~mscloud.causes.Cause` and has a remedy. With a wait, the failures that can be propagation
delays are retried under the one retry policy (:mod:`mscloud.retry`) until the deadline; with ``admin``, a
refused login is explained from the Exchange side (registration, FullAccess, POP enabled) by the rules of
:mod:`mscloud.permissions`.

Neither the client secret nor a token is ever put into a result or an exception.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from components.settings import to_rfc3339
from mscloud.auth import shared_token_source
from mscloud.causes import Cause
from mscloud.entra import AppTokenRequest, TokenClaims, TokenRequestFailed, fresh_app_token
from mscloud.errors import Pop3OAuthError
from mscloud.exchange import ExchangeClient, ExchangeReader
from mscloud.permissions import holds_full_access, points_at, principal_of, registered_object_id
from mscloud.retry import Backoff, Retry, RetryPolicy, Wait
from popctl.pop3 import DEFAULT_TIMEOUT, MailboxStatus, Pop3Error, Pop3LoginRefused, read_mailbox_status
from popctl.target import Target

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
    Cause.MAIL_NOT_FETCHED: (
        "The ERP has stopped fetching this mailbox: check in Concept Office (Externe Systeme) that the "
        "mailbox entry has the current client secret (`popctl handoff --show-secret`) and that its fetch "
        "job runs; orders and order confirmations wait in the mailbox until then."
    ),
}

PROPAGATION_CAUSES = frozenset(
    {Cause.UNKNOWN_APP, Cause.INVALID_SECRET, Cause.CONSENT_MISSING, Cause.LOGIN_REFUSED}
)
"""Failures that can be propagation delays after `pulumi up`, and so are retried within ``--wait``."""

DEFAULT_DATE_LIMIT = 500
"""How many messages ``--max-age`` dates at most per session (``TOP n 0`` each), to keep the session short."""

DEFAULT_BACKOFF = Backoff(initial=2.0, factor=2.0, maximum=30.0)
"""The waits between the attempts of ``--wait``: 2, 4, 8, 16, then 30 s."""


class Failure(Pop3OAuthError):
    """One failed attempt: the cause, a safe one-line detail, and the AADSTS codes if any."""

    def __init__(self, cause: Cause, detail: str, aadsts: tuple[int, ...] = ()) -> None:
        super().__init__(detail)
        self.cause = cause
        self.detail = detail
        self.aadsts = aadsts


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
    oldest_message_at: datetime | None = None

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
            "oldestMessageAt": to_rfc3339(self.oldest_message_at) if self.oldest_message_at else None,
        }


TokenAcquirer = Callable[[AppTokenRequest, str], str]


class MailboxLogin(Protocol):
    def __call__(
        self,
        host: str,
        port: int,
        user: str,
        token: str,
        *,
        context: ssl.SSLContext,
        timeout: float,
        date_limit: int,
    ) -> MailboxStatus: ...


class Observer(Protocol):
    """Told what :func:`verify_mailboxes` does, as it does it (the command's rendering)."""

    def checking(self, mailbox: str, target: Target) -> None: ...

    def retrying(self, notice: RetryNotice) -> None: ...

    def result(self, result: MailboxResult) -> None: ...


class Verifier:
    """Checks mailboxes of one :class:`~popctl.target.Target` with one secret.

    ``acquire``, ``login``, ``clock``, ``sleep`` and ``now`` are seams for tests; ``backoff`` defaults to
    :data:`DEFAULT_BACKOFF`; ``on_retry`` is told about every wait (the progress line). With ``max_age``, a
    mailbox whose oldest message (of the first ``date_limit``) is older fails as ``mail-not-fetched``.
    """

    def __init__(
        self,
        target: Target,
        secret: str,
        *,
        acquire: TokenAcquirer = fresh_app_token,
        login: MailboxLogin = read_mailbox_status,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[RetryNotice], None] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_age: timedelta | None = None,
        date_limit: int = DEFAULT_DATE_LIMIT,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
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
        self._max_age = max_age
        self._date_limit = date_limit if max_age is not None else 0
        self._now = now
        self.tls_context = ssl.create_default_context(cafile=str(target.ca_file) if target.ca_file else None)

    def __repr__(self) -> str:
        return f"Verifier({self.target!r})"

    def verify(self, mailbox: str, *, wait: float = 0.0) -> MailboxResult:
        """Check ``mailbox``; retry propagation failures with backoff until ``wait`` seconds have passed."""
        started = self._clock()
        attempts = 0

        def once() -> MailboxStatus:
            nonlocal attempts
            attempts += 1
            try:
                return self.attempt(mailbox)
            except Failure as failure:
                if wait > 0 and failure.cause in PROPAGATION_CAUSES:
                    raise Retry(failure) from None
                raise

        def still_failing(failure: Exception, tries: int) -> Exception:
            if not isinstance(failure, Failure):
                return failure
            elapsed = self._clock() - started
            suffix = f" (still failing after {tries} attempts in {elapsed:.0f} s)"
            return Failure(failure.cause, failure.detail + suffix, failure.aadsts)

        def notify(pause: Wait) -> None:
            if self._on_retry is not None and isinstance(pause.reason, Failure):
                cause = pause.reason.cause
                self._on_retry(RetryNotice(mailbox, pause.attempt, cause, pause.seconds, pause.remaining))

        policy = RetryPolicy(wait, self._backoff, self._clock, self._sleep, use_whole_budget=True)
        try:
            status = policy.run(once, exhausted=still_failing, before_wait=notify)
        except Failure as failure:
            return MailboxResult(
                mailbox,
                False,
                cause=failure.cause,
                detail=failure.detail,
                aadsts=failure.aadsts,
                attempts=attempts,
                seconds=self._clock() - started,
            )
        elapsed = self._clock() - started
        result = MailboxResult(
            mailbox,
            True,
            status.messages,
            status.octets,
            attempts=attempts,
            seconds=elapsed,
            oldest_message_at=status.oldest_message_at,
        )
        self._judge_age(result, status)
        return result

    def _judge_age(self, result: MailboxResult, status: MailboxStatus) -> None:
        """Fail ``result`` as ``mail-not-fetched`` when its oldest message is older than ``max_age``."""
        if self._max_age is None:
            return
        if status.dated < status.messages:
            result.findings.append(
                f"dated the first {status.dated} of {status.messages} messages (the limit of one session)"
            )
        oldest = status.oldest_message_at
        if oldest is None:
            return
        age = self._now() - oldest
        if age > self._max_age:
            result.ok = False
            result.cause = Cause.MAIL_NOT_FETCHED
            result.detail = (
                f"the oldest message arrived {to_rfc3339(oldest)}, {_duration(age)} ago, longer than "
                f"--max-age {_duration(self._max_age)}"
            )

    def attempt(self, mailbox: str) -> MailboxStatus:
        """One try: a fresh token, its claims, the POP3 login and STAT; raises :class:`Failure`."""
        target = self.target
        request = AppTokenRequest(
            target.tenant_id, target.client_id, target.token_cloud, target.scope, target.ca_file
        )
        try:
            token = self._acquire(request, self._secret)
            claims = TokenClaims.from_token(token)
        except TokenRequestFailed as failed:
            raise Failure(failed.cause, failed.detail, failed.codes) from None
        problems = claims.problems(tenant_id=target.tenant_id, scope=target.scope)
        _refuse_claims(claims, problems, target)
        where = f"{target.pop3_host}:{target.pop3_port}"
        try:
            return self._login(
                target.pop3_host,
                target.pop3_port,
                mailbox,
                token,
                context=self.tls_context,
                timeout=self._timeout,
                date_limit=self._date_limit,
            )
        except Pop3LoginRefused as refused:
            if Cause.TOKEN_EXPIRED in problems:
                raise Failure(
                    Cause.TOKEN_EXPIRED, f"{where} refused a token whose exp claim has passed"
                ) from None
            raise Failure(Cause.LOGIN_REFUSED, f"{where}: {refused.reply}") from None
        except Pop3Error as error:
            raise Failure(error.cause, str(error)) from None


def _duration(span: timedelta) -> str:
    """``2d 3h``, ``6h``, ``45m``: a span as ``--max-age`` writes it, to the minute."""
    minutes = int(span.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [f"{value}{unit}" for value, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if value]
    return " ".join(parts) or "0m"


def _refuse_claims(claims: TokenClaims, problems: Sequence[Cause], target: Target) -> None:
    """Raise the failure the claims make certain (Office 365 refuses such a token), if any."""
    if Cause.WRONG_TENANT in problems:
        raise Failure(
            Cause.WRONG_TENANT, f"token tenant (tid) is {claims.tenant_id}, expected {target.tenant_id}"
        )
    if Cause.WRONG_AUDIENCE in problems:
        audiences = ", ".join(claims.audiences) or "none"
        raise Failure(
            Cause.WRONG_AUDIENCE,
            f"token audience is {audiences}, expected {target.scope.removesuffix('/.default')}",
        )
    if Cause.CONSENT_MISSING in problems:
        roles = ", ".join(claims.roles) or "none"
        raise Failure(Cause.CONSENT_MISSING, f"the token's roles ({roles}) lack POP.AccessAsApp")


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
    check. Raises a :class:`~mscloud.errors.Pop3OAuthError` when Exchange cannot be read.
    """
    findings: list[str] = []
    causes: list[Cause] = []
    registration = exchange.get_service_principal(client_id)
    if registration is None:
        causes.append(Cause.REGISTRATION_MISSING)
        findings.append(f"Exchange has no service principal for app {client_id}")
    else:
        registered = registered_object_id(registration)
        if service_principal_object_id is None:
            findings.append(
                f"registration found (ObjectId {registered}); its object id was not compared "
                "(pass --stack or --service-principal-object-id)"
            )
        elif not points_at(registration, service_principal_object_id):
            causes.append(Cause.REGISTRATION_WRONG_OBJECT)
            findings.append(
                f"Exchange registration points at object id {registered}, but the service principal's "
                f"is {service_principal_object_id} ({registered} is most likely the app registration's "
                "object id)"
            )
        else:
            findings.append(f"registration points at the service principal {registered}")
    cas = exchange.get_cas_mailbox(mailbox)
    if cas is None:
        causes.append(Cause.MAILBOX_NOT_FOUND)
        findings.append(f"Exchange has no mailbox {mailbox}")
        return causes[0], findings
    object_id = service_principal_object_id or (registered_object_id(registration) if registration else "")
    if not holds_full_access(
        exchange, mailbox, principal_of(object_id or client_id, registration, client_id)
    ):
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


def explain_with_admin(result: MailboxResult, target: Target, exchange: ExchangeReader) -> None:
    """Refine a ``login-refused`` result in place from Exchange's configuration."""
    try:
        cause, findings = diagnose_refused_login(
            exchange,
            mailbox=result.mailbox,
            client_id=target.client_id,
            service_principal_object_id=target.service_principal_object_id,
        )
    except Pop3OAuthError as error:
        result.findings.append(f"admin check not possible: {error}")
        return
    result.findings.extend(findings)
    if cause is not None:
        result.cause = cause
    else:
        result.findings.append(
            "Exchange looks right: the refusal is most likely replication of a recent change (use --wait)"
        )


def verify_mailboxes(
    target: Target,
    secret: str,
    observer: Observer,
    *,
    wait: float = 0.0,
    timeout: float = DEFAULT_TIMEOUT,
    admin: bool = False,
    backoff: Backoff | None = None,
    max_age: timedelta | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[MailboxResult]:
    """Verify every mailbox of ``target`` in turn, telling ``observer``; with ``admin``, explain refused
    logins with an Exchange admin client (``ARM_*`` credentials or the ``popctl login`` cache); with
    ``max_age``, fail mailboxes whose oldest message is older (``mail-not-fetched``)."""
    verifier = Verifier(
        target,
        secret,
        backoff=backoff,
        on_retry=observer.retrying,
        timeout=timeout,
        max_age=max_age,
        now=now,
    )
    exchange: ExchangeClient | None = None
    results: list[MailboxResult] = []
    try:
        for mailbox in target.mailboxes:
            observer.checking(mailbox, target)
            result = verifier.verify(mailbox, wait=wait)
            if admin and result.cause is Cause.LOGIN_REFUSED:
                exchange = exchange or ExchangeClient(
                    target.tenant_id, target.cloud, shared_token_source(), max_retry_seconds=30.0
                )
                explain_with_admin(result, target, exchange)
            observer.result(result)
            results.append(result)
    finally:
        if exchange is not None:
            exchange.close()
    return results
