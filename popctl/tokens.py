"""App-only access tokens for POP3 (msal client credentials) and what their claims say.

Every call to :func:`acquire_app_token` builds a new msal application with an empty token cache and
its own HTTP session: msal caches app tokens per application object, and a token cached from before the
admin consent would lack the POP role for its whole lifetime - a retry must see the directory as it is now.

Tokens are returned to the caller and never logged, printed or put into an exception message.
Failures are :class:`TokenFailure` with a :class:`TokenFailureKind` and the AADSTS codes Entra sent.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt
import msal
import requests

from components.clouds import CLOUDS, EXCHANGE_ONLINE_APP_ID, POP_ACCESS_AS_APP
from components.settings import is_guid

DEFAULT_TIMEOUT = 30.0
_AADSTS = re.compile(r"AADSTS(\d+)")


class TokenFailureKind(StrEnum):
    """Why no token was issued."""

    UNKNOWN_TENANT = "unknown-tenant"
    UNKNOWN_APP = "unknown-app"
    INVALID_SECRET = "invalid-secret"  # noqa: S105
    EXPIRED_SECRET = "expired-secret"  # noqa: S105
    INVALID_SCOPE = "invalid-scope"
    ENDPOINT_TLS = "endpoint-tls"
    ENDPOINT_UNREACHABLE = "endpoint-unreachable"
    MALFORMED_TOKEN = "malformed-token"  # noqa: S105
    OTHER = "other"


AADSTS_KINDS: Mapping[int, TokenFailureKind] = {
    90002: TokenFailureKind.UNKNOWN_TENANT,
    900023: TokenFailureKind.UNKNOWN_TENANT,
    90072: TokenFailureKind.UNKNOWN_TENANT,
    700016: TokenFailureKind.UNKNOWN_APP,
    7000112: TokenFailureKind.UNKNOWN_APP,
    7000215: TokenFailureKind.INVALID_SECRET,
    7000218: TokenFailureKind.INVALID_SECRET,
    7000222: TokenFailureKind.EXPIRED_SECRET,
    70011: TokenFailureKind.INVALID_SCOPE,
    1002012: TokenFailureKind.INVALID_SCOPE,
    500011: TokenFailureKind.INVALID_SCOPE,
}
"""AADSTS error numbers and what they mean for this check (the first known code of a response wins)."""


class TokenFailure(Exception):
    """The token endpoint did not issue a token. ``str()`` is safe to show: no secret, no token."""

    def __init__(self, kind: TokenFailureKind, detail: str, aadsts: tuple[int, ...] = ()) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.aadsts = aadsts


@dataclass(frozen=True)
class AppTokenRequest:
    """Where and for what to ask: ``authority_host`` is a URL without trailing slash, ``scope`` ends
    in ``/.default``; ``ca_file`` replaces the default CA bundle for the token endpoint."""

    tenant_id: str
    client_id: str
    authority_host: str
    scope: str
    ca_file: Path | None = None
    timeout: float = DEFAULT_TIMEOUT

    @property
    def authority(self) -> str:
        return f"{self.authority_host}/{self.tenant_id}"


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


def acquire_app_token(request: AppTokenRequest, secret: str) -> str:
    """A fresh app-only access token for ``request.scope`` (client credentials with ``secret``).

    Raises :class:`TokenFailure`. Never answers from a cache.
    """
    known_host = request.authority_host in {cloud.authority_host for cloud in CLOUDS.values()}
    with _Session(request.timeout, request.ca_file) as session:
        try:
            app = msal.ConfidentialClientApplication(
                request.client_id,
                client_credential=secret,
                authority=request.authority,
                token_cache=msal.TokenCache(),
                http_client=session,
                instance_discovery=None if known_host else False,
            )
            result = app.acquire_token_for_client(scopes=[request.scope])
        except requests.exceptions.SSLError as error:
            raise TokenFailure(
                TokenFailureKind.ENDPOINT_TLS,
                f"TLS failure talking to {request.authority_host}: {_ssl_reason(error)}",
            ) from None
        except requests.exceptions.Timeout:
            raise TokenFailure(
                TokenFailureKind.ENDPOINT_UNREACHABLE,
                f"{request.authority_host} did not answer within {request.timeout:g} s",
            ) from None
        except requests.exceptions.ConnectionError:
            raise TokenFailure(
                TokenFailureKind.ENDPOINT_UNREACHABLE, f"cannot connect to {request.authority_host}"
            ) from None
        except requests.exceptions.HTTPError as error:
            status = error.response.status_code if error.response is not None else "?"
            raise TokenFailure(
                TokenFailureKind.OTHER, f"{request.authority_host} answered HTTP {status} to OpenID discovery"
            ) from None
        except requests.RequestException as error:
            raise TokenFailure(
                TokenFailureKind.ENDPOINT_UNREACHABLE,
                f"request to {request.authority_host} failed ({type(error).__name__})",
            ) from None
        except ValueError as error:
            if "authority configuration" in str(error):
                raise TokenFailure(
                    TokenFailureKind.UNKNOWN_TENANT,
                    f"{request.authority} has no OpenID configuration: "
                    f"tenant {request.tenant_id!r} not found",
                    (90002,),
                ) from None
            text = str(error).replace(secret, "***") if secret else str(error)
            raise TokenFailure(TokenFailureKind.OTHER, f"msal rejected the request: {text[:200]}") from None
    token = result.get("access_token") if isinstance(result, dict) else None
    if isinstance(token, str) and token:
        return token
    raise failure_from_response(result if isinstance(result, dict) else {})


def failure_from_response(response: Mapping[str, Any]) -> TokenFailure:
    """Classify an msal error dict (``error``, ``error_description``, ``error_codes``)."""
    codes = tuple(int(code) for code in response.get("error_codes") or () if str(code).isdigit())
    description = str(response.get("error_description") or response.get("error") or "no token and no error")
    if not codes:
        codes = tuple(int(match) for match in _AADSTS.findall(description))
    kind = next((AADSTS_KINDS[code] for code in codes if code in AADSTS_KINDS), TokenFailureKind.OTHER)
    return TokenFailure(kind, _first_sentence(description), codes)


def _first_sentence(description: str) -> str:
    """The AADSTS text without the trace/correlation ids and timestamp Entra appends."""
    return re.split(r"\s+(?:Trace ID|Correlation ID|Timestamp):", description, maxsplit=1)[0].strip()


def _ssl_reason(error: requests.exceptions.SSLError) -> str:
    text = str(error)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        match = re.search(r"certificate verify failed: ([^(')\]]+)", text)
        return "certificate not trusted" + (f" ({match.group(1).strip()})" if match else "")
    return "handshake failed"


class ClaimProblem(StrEnum):
    """Something in a token that Office 365 would refuse, or that explains a refusal."""

    WRONG_TENANT = "wrong-tenant"
    WRONG_AUDIENCE = "wrong-audience"
    ROLE_MISSING = "role-missing"
    EXPIRED = "expired"


@dataclass(frozen=True)
class TokenClaims:
    """The claims that matter, read from an access token (signature not verified: this is a diagnosis)."""

    tenant_id: str | None
    audiences: tuple[str, ...]
    roles: tuple[str, ...]
    expires_at: float | None
    app_id: str | None

    @classmethod
    def from_token(cls, token: str) -> TokenClaims:
        """Decode ``token`` without verifying it; raises :class:`TokenFailure` when it is not a JWT."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TokenFailure(
                TokenFailureKind.MALFORMED_TOKEN, "the access token is not a readable JWT"
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
        )

    def problems(
        self,
        *,
        tenant_id: str,
        scope: str,
        role: str = POP_ACCESS_AS_APP,
        now: float | None = None,
    ) -> list[ClaimProblem]:
        """What is wrong with these claims for a POP3 login to ``tenant_id`` with a token for ``scope``.

        The tenant is only compared when ``tenant_id`` is a GUID (a domain name cannot be compared with
        ``tid``) and the token names one: Entra always does, and an issuer that does not leaves the verdict
        to the server. The audience may be the resource URL of ``scope`` or Exchange Online's app id.
        """
        found: list[ClaimProblem] = []
        if is_guid(tenant_id) and self.tenant_id is not None and self.tenant_id.lower() != tenant_id.lower():
            found.append(ClaimProblem.WRONG_TENANT)
        resource = scope.removesuffix("/.default").rstrip("/").lower()
        accepted = {resource, EXCHANGE_ONLINE_APP_ID}
        if not any(audience.rstrip("/").lower() in accepted for audience in self.audiences):
            found.append(ClaimProblem.WRONG_AUDIENCE)
        if role not in self.roles:
            found.append(ClaimProblem.ROLE_MISSING)
        current = time.time() if now is None else now
        if self.expires_at is not None and self.expires_at <= current:
            found.append(ClaimProblem.EXPIRED)
        return found
