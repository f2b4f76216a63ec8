"""A small, read-only Microsoft Graph client for ``popctl adopt``.

Tokens come from a :class:`components.exchange.auth.TokenSource` with the cloud's Graph scope, so the same
``ARM_*`` credentials or delegated sign-in as the Exchange client apply. ``POP3_OAUTH_GRAPH_URL`` moves
the endpoint (through :meth:`components.clouds.Cloud.with_overrides`). One ``requests`` session, explicit
timeouts, bounded retries on 429/503/504 honouring ``Retry-After``, ``@odata.nextLink`` paging restricted to
the Graph host, and errors that carry status, Graph's error code and request id but never a token.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from components.clouds import Cloud
from components.exchange.auth import TokenSource
from components.http import retry_delay, same_origin_link

API_VERSION = "v1.0"
RETRYABLE_STATUS = frozenset({429, 503, 504})
DEFAULT_TIMEOUT = (10.0, 60.0)


class GraphError(Exception):
    """A Graph request failed. ``status`` is the HTTP status (0 when there was no answer)."""

    def __init__(self, message: str, *, status: int = 0, code: str = "", request_id: str = "") -> None:
        parts = [f"HTTP {status}"] if status else []
        parts += [code] if code else []
        parts += [f"request id {request_id}"] if request_id else []
        super().__init__(message + (f" [{', '.join(parts)}]" if status or request_id else ""))
        self.status = status
        self.code = code
        self.request_id = request_id


class GraphNotFound(GraphError):
    """The object does not exist (404)."""


class GraphAccessDenied(GraphError):
    """401/403: the credential lacks a Graph permission such as Application.Read.All."""


class GraphClient:
    """Reads directory objects in one tenant through Microsoft Graph ``v1.0``.

    ``max_retry_seconds`` bounds the total time spent waiting out throttling per call; ``sleep`` and
    ``clock`` are injectable so tests do not wait.
    """

    def __init__(
        self,
        tenant_id: str,
        cloud: Cloud,
        tokens: TokenSource,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_retry_seconds: float = 60.0,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.tenant_id = tenant_id
        self.cloud = cloud
        self.base_url = f"{cloud.graph_url}/{API_VERSION}"
        self._tokens = tokens
        self._session = session or requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._max_retry_seconds = max_retry_seconds
        self._timeout = timeout

    def close(self) -> None:
        self._session.close()

    def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """``GET {graph}/v1.0/{path}`` and return the JSON object."""
        return self._request(f"{self.base_url}/{path.lstrip('/')}", params)

    def get_all(self, path: str, params: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """All items of a collection, following ``@odata.nextLink`` (only to the Graph host)."""
        items: list[dict[str, Any]] = []
        url: str | None = f"{self.base_url}/{path.lstrip('/')}"
        query = params
        while url is not None:
            page = self._request(url, query)
            items.extend(item for item in page.get("value") or [] if isinstance(item, dict))
            url = self._next_link(page.get("@odata.nextLink"))
            query = None
        return items

    def applications(
        self, *, client_id: str | None = None, display_name: str | None = None
    ) -> list[dict[str, Any]]:
        """App registrations whose ``appId`` or ``displayName`` equals the given value."""
        if client_id is not None:
            flt = f"appId eq '{_odata_string(client_id)}'"
        elif display_name is not None:
            flt = f"displayName eq '{_odata_string(display_name)}'"
        else:
            raise ValueError("give client_id or display_name")
        select = "id,appId,displayName,signInAudience,requiredResourceAccess,passwordCredentials"
        return self.get_all("applications", {"$filter": flt, "$select": select})

    def service_principal_by_app_id(self, app_id: str) -> dict[str, Any] | None:
        """The tenant's service principal (enterprise application) of ``app_id``, or None."""
        found = self.get_all(
            "servicePrincipals",
            {"$filter": f"appId eq '{_odata_string(app_id)}'", "$select": "id,appId,displayName,appRoles"},
        )
        return found[0] if found else None

    def app_role_assignments(self, service_principal_id: str) -> list[dict[str, Any]]:
        """The app roles granted to ``service_principal_id`` (admin consent for application permissions)."""
        return self.get_all(f"servicePrincipals/{quote(service_principal_id, safe='')}/appRoleAssignments")

    def _next_link(self, link: object) -> str | None:
        try:
            return same_origin_link(self.base_url, link)
        except ValueError as error:
            raise GraphError(str(error)) from None

    def _request(self, url: str, params: Mapping[str, str] | None) -> dict[str, Any]:
        deadline = self._clock() + self._max_retry_seconds
        attempt = 0
        while True:
            attempt += 1
            request_id = str(uuid.uuid4())
            token = self._tokens.get_token(self.tenant_id, self.cloud, self.cloud.graph_scope)
            headers = {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "client-request-id": request_id,
            }
            try:
                response = self._session.get(url, params=params, headers=headers, timeout=self._timeout)
            except requests.RequestException as error:
                raise GraphError(
                    f"Graph request to {urlsplit(url).path} failed: {type(error).__name__}"
                ) from None
            if response.status_code in RETRYABLE_STATUS:
                delay = retry_delay(response.headers.get("Retry-After"), attempt)
                if self._clock() + delay <= deadline:
                    self._sleep(delay)
                    continue
            if response.status_code >= 400:
                raise _classify(response, urlsplit(url).path, request_id)
            try:
                payload = response.json()
            except ValueError:
                raise GraphError(
                    f"Graph answered {urlsplit(url).path} with something other than JSON"
                ) from None
            if not isinstance(payload, dict):
                raise GraphError(f"Graph answered {urlsplit(url).path} with JSON that is not an object")
            return payload


def _classify(response: requests.Response, path: str, request_id: str) -> GraphError:
    code, message = "", ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = str(error.get("code", ""))
        message = str(error.get("message", ""))
        inner = error.get("innerError") or error.get("innererror") or {}
        if isinstance(inner, dict):
            request_id = str(inner.get("request-id") or inner.get("client-request-id") or request_id)
    text = f"Graph GET {path}: {message or response.reason or 'request failed'}"
    status = response.status_code
    if status == 404:
        return GraphNotFound(text, status=status, code=code, request_id=request_id)
    if status in (401, 403):
        hint = " (the credential needs Application.Read.All or an equivalent directory role)"
        return GraphAccessDenied(text + hint, status=status, code=code, request_id=request_id)
    return GraphError(text, status=status, code=code, request_id=request_id)


def _odata_string(value: str) -> str:
    return value.replace("'", "''")
