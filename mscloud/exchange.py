"""The client for the Exchange Online admin endpoint.

``POST {exchangeUrl}/adminapi/beta/{tenant}/InvokeCommand`` runs one cmdlet.

It does the protocol work for the providers and for popctl: headers for app-only and delegated tokens,
error classification by body text, read-back instead of a blind replay of New-/Add- after a 5xx, paging,
normalisation of every response variant seen in the wild, and bounded polling through replication lag. The
session, timeouts, retries and paging links are the HTTP core's (:mod:`mscloud.http`). Tokens never appear
in exceptions or logs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar, Unpack
from urllib.parse import urlsplit

import jwt
import requests

from mscloud.clouds import Cloud
from mscloud.errors import Pop3OAuthError
from mscloud.http import HttpCore, Reply, TokenSource, Transport
from mscloud.retry import Retry, RetryPolicy

log = logging.getLogger(__name__)

APP_ONLY_ANCHOR = "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@"
NOT_FOUND_MARKERS = ("couldn't be found", "could not be found", "managementobjectnotfoundexception")
ALREADY_GONE_MARKERS = ("ace doesn't exist", "ace does not exist")
ALREADY_EXISTS_MARKERS = ("already exists", "already registered")
THROTTLE_MARKERS = ("maximum number of concurrent requests", "too many requests")
DENIED_MARKERS = ("access is denied", "accessdenied", "isn't allowed", "not authorized", "unauthorized")

T = TypeVar("T")


class ExchangeError(Pop3OAuthError):
    """A cmdlet failed.

    Attributes: ``status`` (HTTP), ``cmdlet``, ``request_id``, ``code`` (exception class or error code) and
    ``reason`` (Exchange's human text, taken from ``details``). Never carries a token.
    """

    def __init__(
        self, reason: str, *, cmdlet: str, status: int | None = None, request_id: str = "", code: str = ""
    ) -> None:
        self.reason = reason
        self.cmdlet = cmdlet
        self.status = status
        self.request_id = request_id
        self.code = code
        where = f"HTTP {status}" if status is not None else "no response"
        super().__init__(
            f"{cmdlet} failed ({where}{', request id ' + request_id if request_id else ''}): {reason}"
        )


class ExchangeNotFound(ExchangeError):
    """The object named by ``Identity`` (or ``User``) does not exist, or is not visible yet."""


class ExchangeAlreadyGone(ExchangeError):
    """A Remove- found nothing to remove (for mailbox permissions: the ACE doesn't exist)."""


class ExchangeAlreadyExists(ExchangeError):
    """A New-/Add- found the object already there."""


class ExchangeAccessDenied(ExchangeError):
    """401/403: the caller lacks Exchange.ManageAsApp plus an Exchange role, or AdminApi.AccessAsUser.All."""


class ExchangeThrottled(ExchangeError):
    """Throttling or unavailability outlasted the retry budget."""


class ExchangeOutcomeUnknown(ExchangeError):
    """A New-/Add- got a 5xx: it may or may not have taken effect, so it was not replayed blindly."""


class ExchangeReplicationTimeout(ExchangeError):
    """An object just created did not become visible within the replication-lag budget."""


class ExchangePrincipalNotReplicated(ExchangeError):
    """Add-MailboxPermission kept answering that a just-registered service principal couldn't be found."""


class ExchangeReader(Protocol):
    """The read-only part of :class:`ExchangeClient` (what ``popctl verify --admin`` and ``adopt`` use)."""

    def get_service_principal(self, identity: str) -> dict[str, Any] | None: ...

    def get_mailbox(self, identity: str) -> dict[str, Any] | None: ...

    def get_mailbox_permissions(self, mailbox: str, user: str | None = None) -> list[dict[str, Any]]: ...

    def get_cas_mailbox(self, mailbox: str) -> dict[str, Any] | None: ...


class ExchangeClient:
    """Calls cmdlets in one tenant. Thread-safe as far as ``requests.Session`` is; one session per client.

    ``transport`` (:class:`mscloud.http.Transport`): ``max_retry_seconds`` (default 120) bounds the time
    spent waiting out throttling and 5xx per call, and replaying a New-/Add- confirmed missing after an
    unknown outcome; ``timeout`` defaults to (10, 120) s. ``lag_timeout_seconds`` bounds the wait for a newly
    created object to become readable; ``principal_lag_seconds`` the time an Add-MailboxPermission is
    repeated while Exchange does not know the service principal yet.
    """

    def __init__(
        self,
        tenant_id: str,
        cloud: Cloud,
        tokens: TokenSource,
        *,
        lag_timeout_seconds: float = 180.0,
        principal_lag_seconds: float = 120.0,
        **transport: Unpack[Transport],
    ) -> None:
        self.tenant_id = tenant_id
        self.cloud = cloud
        self.url = f"{cloud.exchange_url}/adminapi/beta/{tenant_id}/InvokeCommand"
        self._tokens = tokens
        defaults: Transport = {"max_retry_seconds": 120.0, "timeout": (10.0, 120.0)}
        self._http = HttpCore(tokens, tenant_id, cloud, cloud.exchange_scope, **(defaults | transport))
        self._replays = self._http.policy
        self._lag = RetryPolicy(lag_timeout_seconds, clock=self._replays.clock, sleep=self._replays.sleep)
        self._principal_lag = RetryPolicy(
            principal_lag_seconds, clock=self._replays.clock, sleep=self._replays.sleep
        )

    def close(self) -> None:
        self._http.close()

    def invoke(self, cmdlet: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run ``cmdlet`` and return its objects, annotation keys stripped and all pages followed.

        Retries 429/503/504 (honouring ``Retry-After``) within ``max_retry_seconds``. A New-/Add- that
        gets no answer or a 5xx raises :class:`ExchangeOutcomeUnknown` instead of being replayed.
        """
        body = {"CmdletInput": {"CmdletName": cmdlet, "Parameters": dict(parameters or {})}}
        failures = _CmdletFailures(cmdlet)

        def page(url: str, _first: bool) -> dict[str, Any]:
            reply = self._http.send(
                "POST",
                url,
                failures,
                replayable=not _is_create(cmdlet),
                headers=lambda token: self._headers(cmdlet, token),
                json=body,
            )
            return _parse_success(cmdlet, reply)

        return [strip_annotations(item) for item in self._http.pages(self.url, page, failures)]

    def get_service_principal(self, identity: str) -> dict[str, Any] | None:
        """The service principal registration with this AppId, ObjectId or name, or None."""
        try:
            found = self.invoke("Get-ServicePrincipal", {"Identity": identity})
        except ExchangeNotFound:
            return None
        return found[0] if found else None

    def get_mailbox(self, identity: str) -> dict[str, Any] | None:
        """The mailbox an address or id names (Get-Mailbox), or None when there is none."""
        try:
            found = self.invoke("Get-Mailbox", {"Identity": identity})
        except ExchangeNotFound:
            return None
        return found[0] if found else None

    def new_service_principal(self, app_id: str, object_id: str, display_name: str) -> dict[str, Any]:
        """Register an Entra service principal in Exchange and wait until it can be read back."""
        parameters = {"AppId": app_id, "ObjectId": object_id, "DisplayName": display_name}
        read_back = lambda: self.get_service_principal(object_id)  # noqa: E731
        self._create("New-ServicePrincipal", parameters, read_back)
        return self.wait_until_visible("New-ServicePrincipal", read_back)

    def set_service_principal(self, identity: str, display_name: str) -> None:
        self.invoke("Set-ServicePrincipal", {"Identity": identity, "DisplayName": display_name})

    def remove_service_principal(self, identity: str) -> bool:
        """Remove the registration; False when it was already gone."""
        return self._remove("Remove-ServicePrincipal", {"Identity": identity})

    def get_mailbox_permissions(self, mailbox: str, user: str | None = None) -> list[dict[str, Any]]:
        """The mailbox's permission entries; raises ExchangeNotFound.

        ``AccessRights`` comes as a list of str, ``IsInherited`` and ``Deny`` as bool, whatever the shape on
        the wire (what :mod:`mscloud.permissions` reads).
        """
        parameters = {"Identity": mailbox} | ({"User": user} if user else {})
        return [
            entry
            | {
                "AccessRights": normalise_rights(entry.get("AccessRights")),
                "IsInherited": as_bool(entry.get("IsInherited")),
                "Deny": as_bool(entry.get("Deny")),
            }
            for entry in self.invoke("Get-MailboxPermission", parameters)
        ]

    def add_mailbox_permission(
        self,
        mailbox: str,
        user: str,
        access_rights: Iterable[str],
        *,
        visible: Callable[[], bool] | None = None,
    ) -> None:
        """Grant ``access_rights`` on ``mailbox`` to ``user``; with ``visible``, wait until it says True."""
        rights = list(access_rights)
        parameters = {
            "Identity": mailbox,
            "User": user,
            "AccessRights": rights,
            "InheritanceType": "All",
            "AutoMapping": False,
        }
        check = visible or (lambda: False)

        def attempt() -> None:
            try:
                self._create("Add-MailboxPermission", parameters, lambda: True if check() else None)
            except ExchangeNotFound as missing:
                # The mailbox is named when it is the one missing; otherwise it is the principal, which a
                # New-ServicePrincipal seconds ago has not replicated yet.
                if mailbox.lower() in missing.reason.lower():
                    raise
                raise Retry(missing) from None

        def exhausted(missing: Exception, attempts: int) -> Exception:
            return ExchangePrincipalNotReplicated(
                f"Exchange still does not know service principal {user} after {attempts} attempts in "
                f"{self._principal_lag.budget:.0f} s (it replicates for minutes after New-ServicePrincipal), "
                f"so {', '.join(rights)} on mailbox {mailbox} was not granted: "
                "wait a few minutes and run `pulumi up` again",
                cmdlet="Add-MailboxPermission",
                status=getattr(missing, "status", None),
                request_id=getattr(missing, "request_id", ""),
            )

        self._principal_lag.run(attempt, exhausted=exhausted)
        if visible is not None:
            self.wait_until_visible("Add-MailboxPermission", lambda: True if visible() else None)

    def remove_mailbox_permission(self, mailbox: str, user: str, access_rights: Iterable[str]) -> bool:
        """Revoke ``access_rights``; False when there was nothing to remove (or the mailbox is gone)."""
        parameters = {
            "Identity": mailbox,
            "User": user,
            "AccessRights": list(access_rights),
            "InheritanceType": "All",
        }
        return self._remove("Remove-MailboxPermission", parameters)

    def get_cas_mailbox(self, mailbox: str) -> dict[str, Any] | None:
        """The mailbox's client access settings (``PopEnabled`` as bool), or None when there is no mailbox."""
        try:
            found = self.invoke("Get-CASMailbox", {"Identity": mailbox})
        except ExchangeNotFound:
            return None
        if not found:
            return None
        return found[0] | {"PopEnabled": as_bool(found[0].get("PopEnabled"))}

    def wait_until_visible(self, cmdlet: str, read: Callable[[], T | None]) -> T:
        """Poll ``read`` with a growing delay until it returns a value, within ``lag_timeout_seconds``."""

        def attempt() -> T:
            found = read()
            if found is None:
                raise Retry(
                    ExchangeReplicationTimeout(
                        f"the new object was still not readable after {self._lag.budget:.0f} s "
                        "(replication lag); run the operation again later",
                        cmdlet=cmdlet,
                    )
                )
            return found

        return self._lag.run(attempt)

    def _create(
        self, cmdlet: str, parameters: Mapping[str, Any], read_back: Callable[[], object | None]
    ) -> None:
        """Run a New-/Add-; after an unknown outcome read back, and replay only what is confirmed missing."""

        def attempt() -> None:
            try:
                self.invoke(cmdlet, parameters)
            except ExchangeAlreadyExists:
                return
            except ExchangeOutcomeUnknown as unknown:
                if read_back() is None:
                    log.info("%s outcome unknown and not readable; replaying once more", cmdlet)
                    raise Retry(unknown) from None

        self._replays.run(attempt)

    def _remove(self, cmdlet: str, parameters: Mapping[str, Any]) -> bool:
        try:
            self.invoke(cmdlet, {**parameters, "Confirm": False})
        except (ExchangeNotFound, ExchangeAlreadyGone):
            return False
        return True

    def _headers(self, cmdlet: str, token: str) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Encoding": "identity",
            "X-AnchorMailbox": anchor_mailbox(token, self.tenant_id),
            "X-CmdletName": cmdlet,
            "Prefer": "odata.maxpagesize=1000",
        }


class _CmdletFailures:
    """How the failures of one cmdlet are named (:class:`mscloud.http.Failures`)."""

    def __init__(self, cmdlet: str) -> None:
        self.cmdlet = cmdlet

    def no_answer(self, url: str, error: Exception, request_id: str) -> Exception:
        if isinstance(error, requests.exceptions.SSLError):
            return ExchangeError(
                f"TLS verification of {urlsplit(url).netloc} failed (REQUESTS_CA_BUNDLE?)",
                cmdlet=self.cmdlet,
                request_id=request_id,
            )
        return ExchangeError(
            f"no response ({type(error).__name__})", cmdlet=self.cmdlet, request_id=request_id
        )

    def failed(self, reply: Reply) -> Exception:
        return classify(self.cmdlet, reply.status, reply.body, reply.request_id)

    def throttled(self, failure: Exception) -> bool:
        return isinstance(failure, ExchangeThrottled)

    def outcome_unknown(self, failure: Exception) -> Exception | None:
        if not isinstance(failure, ExchangeError) or type(failure) not in (ExchangeError, ExchangeThrottled):
            return None
        return ExchangeOutcomeUnknown(
            failure.reason, cmdlet=self.cmdlet, status=failure.status, request_id=failure.request_id
        )

    def exhausted(self, failure: Exception, attempts: int, budget: float) -> Exception:
        if not isinstance(failure, ExchangeError):
            return failure
        return ExchangeThrottled(
            f"gave up after {attempts} attempts in {budget:.0f} s: {failure.reason}",
            cmdlet=self.cmdlet,
            status=failure.status,
            request_id=failure.request_id,
            code=failure.code,
        )

    def refused_link(self, message: str) -> Exception:
        return ExchangeError(message, cmdlet=self.cmdlet)


def anchor_mailbox(token: str, tenant_id: str) -> str:
    """``X-AnchorMailbox`` for ``token``: ``UPN:<upn>`` when delegated, else the app-only system mailbox."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        claims = {}
    user = claims.get("upn") or claims.get("unique_name")
    if claims.get("scp") and user:
        return f"UPN:{user}"
    return f"{APP_ONLY_ANCHOR}{tenant_id}"


def classify(cmdlet: str, status: int, raw: bytes, request_id: str = "") -> ExchangeError:
    """The exception for an error response, chosen by the text in ``details`` first and the status second."""
    code, reason = error_reason(raw)
    text = f"{code} {reason}".lower()
    kind: type[ExchangeError] = ExchangeError
    if any(marker in text for marker in NOT_FOUND_MARKERS):
        kind = ExchangeNotFound
    elif any(marker in text for marker in ALREADY_GONE_MARKERS):
        kind = ExchangeAlreadyGone
    elif any(marker in text for marker in ALREADY_EXISTS_MARKERS):
        kind = ExchangeAlreadyExists
    elif status == 429 or any(marker in text for marker in THROTTLE_MARKERS):
        kind = ExchangeThrottled
    elif status in (401, 403) or any(marker in text for marker in DENIED_MARKERS):
        kind = ExchangeAccessDenied
        reason = (
            f"{reason} (access denied: the app needs the Exchange.ManageAsApp permission and the Exchange "
            "Administrator role, or sign in as an Exchange administrator with `python -m popctl login`)"
        ).lstrip()
    return kind(reason or f"HTTP {status}", cmdlet=cmdlet, status=status, request_id=request_id, code=code)


def error_reason(raw: bytes) -> tuple[str, str]:
    """(code, human reason) from an error body; tolerates NUL bytes, non-JSON and JSON-in-JSON ``details``."""
    text = raw.replace(b"\x00", b"").decode("utf-8", errors="replace").strip()
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        return "", text[:500]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", text[:500]
    details = error.get("details") or []
    for detail in details if isinstance(details, list) else []:
        message = detail.get("message") if isinstance(detail, dict) else detail
        if message:
            return _split_detail(str(message))
    return str(error.get("code") or ""), str(error.get("message") or "")


def _split_detail(message: str) -> tuple[str, str]:
    stripped = message.strip()
    if stripped.startswith("{"):
        try:
            inner = json.loads(stripped)
        except ValueError:
            inner = None
        if isinstance(inner, dict):
            code = str(inner.get("ExceptionClass") or inner.get("code") or inner.get("ErrorId") or "")
            reason = inner.get("Message") or inner.get("message") or stripped
            return _split_detail(str(reason))[0] or code, _split_detail(str(reason))[1]
    parts = stripped.split("|")
    if len(parts) >= 3:
        return parts[1], "|".join(parts[2:])
    return "", stripped


def strip_annotations(value: Any) -> Any:
    """``value`` without OData annotation keys (any key containing ``@``), recursively."""
    if isinstance(value, dict):
        return {key: strip_annotations(item) for key, item in value.items() if "@" not in key}
    if isinstance(value, list):
        return [strip_annotations(item) for item in value]
    return value


def normalise_rights(value: Any) -> list[str]:
    """AccessRights as a list of str, whether it came as a list, a comma string or ``{"value": [...]}``."""
    if isinstance(value, dict):
        return normalise_rights(value.get("value"))
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [right for item in value for right in normalise_rights(item)]
    return []


def as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _is_create(cmdlet: str) -> bool:
    return cmdlet.startswith(("New-", "Add-"))


def _parse_success(cmdlet: str, reply: Reply) -> dict[str, Any]:
    if reply.status == 204:
        return {}
    try:
        body = reply.json()
    except ValueError:
        raise ExchangeError(
            "the response is not JSON", cmdlet=cmdlet, status=reply.status, request_id=reply.request_id
        ) from None
    if body is None:
        return {}
    return body if isinstance(body, dict) else {"value": body if isinstance(body, list) else []}
