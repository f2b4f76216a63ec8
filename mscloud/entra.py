"""Token requests to Entra ID (msal), what their failures mean, and what a token's claims say.

One msal wrapper (:func:`call_msal`) turns every failure - an msal error dict, an exception of msal or of
``requests`` - into :class:`TokenRequestFailed` with a :class:`~mscloud.causes.Cause`, the AADSTS codes and a
one-line detail; :data:`AADSTS` is the one table of what the codes mean. Neither a secret nor a token ever
appears in an exception message: secrets the caller names are replaced by ``***`` and Entra's trace and
correlation ids are cut off the description (the correlation id is kept apart).

:func:`fresh_app_token` is the client-credentials request ``popctl verify`` makes: a new msal application
with an empty token cache every time, because msal caches app tokens per application object and a token
cached from before the admin consent would lack the POP role for its whole lifetime.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import jwt
import msal
import requests

from mscloud.causes import Cause
from mscloud.clouds import EXCHANGE_ONLINE_APP_ID, POP_ACCESS_AS_APP, Cloud
from mscloud.errors import Pop3OAuthError
from mscloud.ids import is_guid

DEFAULT_TIMEOUT = 30.0
_AADSTS_IN_TEXT = re.compile(r"AADSTS(\d+)")

T = TypeVar("T")


@dataclass(frozen=True)
class Aadsts:
    """What one AADSTS code means: the cause, and for the codes an operator hits most, what to do."""

    cause: Cause
    hint: str = ""


AADSTS: Mapping[int, Aadsts] = {
    90002: Aadsts(Cause.UNKNOWN_TENANT, "the tenant id is unknown to this cloud"),
    900023: Aadsts(Cause.UNKNOWN_TENANT),
    90072: Aadsts(Cause.UNKNOWN_TENANT),
    700016: Aadsts(Cause.UNKNOWN_APP, "the client id is not registered in this tenant"),
    7000112: Aadsts(Cause.UNKNOWN_APP),
    7000215: Aadsts(Cause.INVALID_SECRET, "the client secret is wrong: use the secret's value, not its id"),
    7000218: Aadsts(Cause.INVALID_SECRET),
    7000222: Aadsts(
        Cause.EXPIRED_SECRET,
        "the client secret has expired: rotate it (pulumi up) and update ARM_CLIENT_SECRET",
    ),
    70011: Aadsts(Cause.WRONG_SCOPE),
    1002012: Aadsts(Cause.WRONG_SCOPE),
    500011: Aadsts(Cause.WRONG_SCOPE),
    50076: Aadsts(
        Cause.TOKEN_REQUEST_FAILED,
        "the sign-in needs multi-factor authentication: run `python -m popctl login` again",
    ),
    70008: Aadsts(Cause.TOKEN_REQUEST_FAILED, "the sign-in has expired: run `python -m popctl login` again"),
}
"""The AADSTS error numbers this project knows; the first known code of a response names its cause."""


class AuthError(Pop3OAuthError):
    """A token could not be obtained. The message never contains a secret or a token."""


class TokenRequestFailed(AuthError):
    """Entra refused or could not answer a token request, or what it gave is not a usable token.

    ``cause`` says why (a :class:`~mscloud.causes.Cause`); ``detail`` is one safe line (no secret, no trace
    id); ``codes`` are the AADSTS numbers; ``error`` the OAuth2 error or the exception's type.
    """

    def __init__(
        self,
        action: str,
        cause: Cause,
        detail: str,
        *,
        error: str = "",
        codes: tuple[int, ...] = (),
        correlation_id: str = "",
    ) -> None:
        self.cause = cause
        self.detail = detail
        self.error = error
        self.codes = codes
        self.correlation_id = correlation_id
        hints = "; ".join(AADSTS[code].hint for code in codes if code in AADSTS and AADSTS[code].hint)
        super().__init__(
            f"{action} failed: {error + ': ' if error else ''}{detail}"
            + (f" ({hints})" if hints else "")
            + (f" [correlation id {correlation_id}]" if correlation_id else "")
        )

    @classmethod
    def from_response(
        cls, action: str, response: Mapping[str, Any], secrets: tuple[str, ...] = ()
    ) -> TokenRequestFailed:
        """Classify an msal error dict (``error``, ``error_description``, ``error_codes``)."""
        codes = tuple(int(code) for code in response.get("error_codes") or () if str(code).isdigit())
        description = str(
            response.get("error_description") or response.get("error") or "no token and no error"
        )
        if not codes:
            codes = tuple(int(match) for match in _AADSTS_IN_TEXT.findall(description))
        cause = next((AADSTS[code].cause for code in codes if code in AADSTS), Cause.TOKEN_REQUEST_FAILED)
        return cls(
            action,
            cause,
            scrub(first_sentence(description), secrets),
            error=str(response.get("error", "unknown_error")),
            codes=codes,
            correlation_id=str(response.get("correlation_id", "")),
        )


def call_msal(
    action: str,
    cloud: Cloud,
    tenant_id: str,
    call: Callable[[], T],
    *,
    secrets: tuple[str, ...] = (),
    timeout: float | None = None,
) -> T:
    """Run an msal call for ``tenant_id`` in ``cloud``; its exceptions become :class:`TokenRequestFailed`."""
    try:
        return call()
    except (requests.RequestException, ValueError, OSError) as error:
        raise _exception_failure(action, cloud, tenant_id, error, secrets, timeout) from None


def _exception_failure(
    action: str,
    cloud: Cloud,
    tenant_id: str,
    error: Exception,
    secrets: tuple[str, ...],
    timeout: float | None,
) -> TokenRequestFailed:
    host = cloud.authority_host
    codes: tuple[int, ...] = ()
    if isinstance(error, requests.exceptions.SSLError):
        cause, detail = Cause.TLS_FAILURE, f"TLS failure talking to {host}: {_ssl_reason(error)}"
    elif isinstance(error, requests.exceptions.Timeout):
        within = f"within {timeout:g} s" if timeout is not None else "in time"
        cause, detail = Cause.TOKEN_ENDPOINT_UNREACHABLE, f"{host} did not answer {within}"
    elif isinstance(error, requests.exceptions.ConnectionError):
        cause, detail = Cause.TOKEN_ENDPOINT_UNREACHABLE, f"cannot connect to {host}"
    elif isinstance(error, requests.exceptions.HTTPError):
        status = error.response.status_code if error.response is not None else "?"
        cause, detail = Cause.TOKEN_REQUEST_FAILED, f"{host} answered HTTP {status} to OpenID discovery"
    elif isinstance(error, requests.RequestException):
        cause, detail = Cause.TOKEN_ENDPOINT_UNREACHABLE, f"request to {host} failed ({type(error).__name__})"
    elif isinstance(error, ValueError) and "authority configuration" in str(error):
        cause, codes = Cause.UNKNOWN_TENANT, (90002,)
        detail = f"{cloud.authority(tenant_id)} has no OpenID configuration: tenant {tenant_id!r} not found"
    elif isinstance(error, ValueError):
        cause, detail = (
            Cause.TOKEN_REQUEST_FAILED,
            f"msal rejected the request: {scrub(str(error), secrets)[:200]}",
        )
    else:
        cause, detail = Cause.TOKEN_REQUEST_FAILED, scrub(str(error), secrets)
    return TokenRequestFailed(action, cause, detail, error=type(error).__name__, codes=codes)


def access_token(action: str, result: Mapping[str, Any] | None, secrets: tuple[str, ...] = ()) -> str:
    """The access token of an msal result, or :class:`TokenRequestFailed` saying why there is none."""
    token = result.get("access_token") if result else None
    if isinstance(token, str) and token:
        return token
    raise TokenRequestFailed.from_response(action, result or {"error": "no_token"}, secrets)


def confidential_client(
    client_id: str,
    credential: Callable[[], Any],
    cloud: Cloud,
    tenant_id: str,
    *,
    secrets: tuple[str, ...] = (),
    http_client: requests.Session | None = None,
    token_cache: msal.TokenCache | None = None,
) -> Any:
    """An msal client-credentials application for ``tenant_id`` (the one place one is built).

    ``credential()`` gives what msal takes - a secret, a certificate dict or ``{"client_assertion": ...}`` -
    and is called inside, so that reading a certificate or an OIDC token fails like the request would.
    Instance discovery is off for an authority host msal does not know (a private endpoint, a test fake).
    """
    options: dict[str, Any] = {}
    if http_client is not None:
        options["http_client"] = http_client
    if token_cache is not None:
        options["token_cache"] = token_cache
    return call_msal(
        _client_action(client_id, cloud, tenant_id),
        cloud,
        tenant_id,
        lambda: msal.ConfidentialClientApplication(
            client_id,
            client_credential=credential(),
            authority=cloud.authority(tenant_id),
            instance_discovery=cloud.is_known_authority,
            **options,
        ),
        secrets=secrets,
    )


def client_token(
    app: Any,
    client_id: str,
    cloud: Cloud,
    tenant_id: str,
    scope: str,
    *,
    secrets: tuple[str, ...] = (),
    timeout: float | None = None,
) -> str:
    """A token for ``scope`` from a :func:`confidential_client` (msal answers from its cache when it can)."""
    action = _client_action(client_id, cloud, tenant_id)
    result = call_msal(
        action,
        cloud,
        tenant_id,
        lambda: app.acquire_token_for_client(scopes=[scope]),
        secrets=secrets,
        timeout=timeout,
    )
    return access_token(action, result, secrets)


def _client_action(client_id: str, cloud: Cloud, tenant_id: str) -> str:
    return f"Token request for client {client_id} at {cloud.authority(tenant_id)}"


@dataclass(frozen=True)
class AppTokenRequest:
    """Where and for what ``popctl verify`` asks: ``cloud`` carries the authority host, ``scope`` ends in
    ``/.default``; ``ca_file`` replaces the default CA bundle for the token endpoint."""

    tenant_id: str
    client_id: str
    cloud: Cloud
    scope: str
    ca_file: Path | None = None
    timeout: float = DEFAULT_TIMEOUT


class _Session(requests.Session):
    """A session with a default timeout whose ``verify`` beats ``REQUESTS_CA_BUNDLE``.

    ``requests`` lets the environment's CA bundle override ``Session.verify`` unless ``verify`` is
    passed per request; ``--ca-file`` must win, so it is passed per request.
    """

    def __init__(self, timeout: float, ca_file: Path | None) -> None:
        super().__init__()
        self._timeout = timeout
        self._ca_file = ca_file

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        if self._ca_file is not None:
            kwargs.setdefault("verify", str(self._ca_file))
        return super().request(method, url, *args, **kwargs)


def fresh_app_token(request: AppTokenRequest, secret: str) -> str:
    """A new app-only access token for ``request.scope`` (client credentials with ``secret``), never cached.

    Raises :class:`TokenRequestFailed`.
    """
    with _Session(request.timeout, request.ca_file) as session:
        app = confidential_client(
            request.client_id,
            lambda: secret,
            request.cloud,
            request.tenant_id,
            secrets=(secret,),
            http_client=session,
            token_cache=msal.TokenCache(),
        )
        return client_token(
            app,
            request.client_id,
            request.cloud,
            request.tenant_id,
            request.scope,
            secrets=(secret,),
            timeout=request.timeout,
        )


@dataclass(frozen=True)
class TokenClaims:
    """The claims that matter, read from an access token (signature not verified: this is a diagnosis)."""

    tenant_id: str | None
    audiences: tuple[str, ...]
    roles: tuple[str, ...]
    expires_at: float | None
    app_id: str | None
    scopes: tuple[str, ...] = ()
    object_id: str | None = None

    @property
    def delegated(self) -> bool:
        """A user's token (it carries ``scp``), not an application's."""
        return bool(self.scopes)

    @classmethod
    def from_token(cls, token: str) -> TokenClaims:
        """Decode ``token`` without verifying it; raises :class:`TokenRequestFailed` when it is not a JWT."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TokenRequestFailed(
                "Reading the access token",
                Cause.TOKEN_REQUEST_FAILED,
                "the access token is not a readable JWT",
            ) from None
        return cls.from_claims(claims)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> TokenClaims:
        audience = claims.get("aud")
        audiences = (audience,) if isinstance(audience, str) else tuple(str(a) for a in audience or ())
        roles = claims.get("roles") or ()
        expires = claims.get("exp")
        return cls(
            tenant_id=str(claims["tid"]) if claims.get("tid") else None,
            audiences=audiences,
            roles=(roles,) if isinstance(roles, str) else tuple(str(role) for role in roles),
            expires_at=float(expires) if isinstance(expires, int | float) else None,
            app_id=str(claims.get("appid") or claims.get("azp") or "") or None,
            scopes=tuple(str(claims.get("scp") or "").split()),
            object_id=str(claims["oid"]).lower() if claims.get("oid") else None,
        )

    def problems(
        self,
        *,
        tenant_id: str,
        scope: str,
        role: str = POP_ACCESS_AS_APP,
        now: float | None = None,
    ) -> list[Cause]:
        """What is wrong with these claims for a POP3 login to ``tenant_id`` with a token for ``scope``.

        Any of ``WRONG_TENANT``, ``WRONG_AUDIENCE``, ``CONSENT_MISSING`` (``role`` not in ``roles``) and
        ``TOKEN_EXPIRED``, in that order. The tenant is only compared when ``tenant_id`` is a GUID (a domain
        name cannot be compared with ``tid``) and the token names one: Entra always does, and an issuer that
        does not leaves the verdict to the server. The audience may be the resource URL of ``scope`` or
        Exchange Online's app id.
        """
        found: list[Cause] = []
        if is_guid(tenant_id) and self.tenant_id is not None and self.tenant_id.lower() != tenant_id.lower():
            found.append(Cause.WRONG_TENANT)
        resource = scope.removesuffix("/.default").rstrip("/").lower()
        accepted = {resource, EXCHANGE_ONLINE_APP_ID}
        if not any(audience.rstrip("/").lower() in accepted for audience in self.audiences):
            found.append(Cause.WRONG_AUDIENCE)
        if role not in self.roles:
            found.append(Cause.CONSENT_MISSING)
        current = time.time() if now is None else now
        if self.expires_at is not None and self.expires_at <= current:
            found.append(Cause.TOKEN_EXPIRED)
        return found


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every one of ``secrets`` replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def first_sentence(description: str) -> str:
    """An AADSTS description without the trace and correlation ids and the timestamp Entra appends."""
    return re.split(r"\s+(?:Trace ID|Correlation ID|Timestamp):", description, maxsplit=1)[0].strip()


def _ssl_reason(error: requests.exceptions.SSLError) -> str:
    text = str(error)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        match = re.search(r"certificate verify failed: ([^(')\]]+)", text)
        return "certificate not trusted" + (f" ({match.group(1).strip()})" if match else "")
    return "handshake failed"
