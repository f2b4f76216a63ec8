"""The Microsoft Graph client of the stand-in: client-secret tokens, throttling, consistency waits, errors.

Pulumi-free. One ``requests`` session, explicit timeouts, 429/503 retried after ``Retry-After`` (bounded),
replication lag retried at the poll interval until the wait bound, and errors that carry the method, path,
HTTP status, Graph's error code and message and the request id - never a header, token or secret.
"""

from __future__ import annotations

import email.utils
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import requests

from tests.engine.azuread.settings import Endpoints, ProviderSettings, ca_bundle, discover_endpoints

LOG = logging.getLogger("pulumi-resource-azuread")
TIMEOUT = (10.0, 60.0)
THROTTLED = frozenset({429, 503})
MAX_THROTTLE_RETRIES = 8
TOKEN_RENEWAL_MARGIN = 300.0
POLL_SECONDS_ENV = "POP3_OAUTH_STANDIN_POLL_SECONDS"
WAIT_SECONDS_ENV = "POP3_OAUTH_STANDIN_WAIT_SECONDS"


class GraphError(Exception):
    """A Graph request failed; ``status`` is 0 when no answer came."""

    def __init__(
        self,
        method: str,
        path: str,
        *,
        status: int = 0,
        code: str = "",
        message: str = "",
        request_id: str = "",
    ) -> None:
        detail = f"HTTP {status}" if status else "no answer"
        detail += f" {code}" if code else ""
        detail += f": {message}" if message else ""
        detail += f" (request-id {request_id})" if request_id else ""
        super().__init__(f"Microsoft Graph {method} {path} failed: {detail}")
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.graph_message = message
        self.request_id = request_id

    def matches(self, status: int, text: str = "") -> bool:
        return self.status == status and text.lower() in self.graph_message.lower()


class AuthenticationError(Exception):
    """No token: the message has Entra's error and description, never the secret."""


class WaitTimeout(Exception):
    """A consistency wait or a throttled request ran out of its bound."""


@dataclass(frozen=True)
class Timing:
    """How often to poll for replication and how long to wait in total (per wait or retried request)."""

    poll_seconds: float = 0.2
    wait_seconds: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Timing:
        env = os.environ if environ is None else environ
        return cls(
            poll_seconds=_seconds(env, POLL_SECONDS_ENV, cls.poll_seconds),
            wait_seconds=_seconds(env, WAIT_SECONDS_ENV, cls.wait_seconds),
        )


RetryIf = Callable[[GraphError], bool]


def on_not_found(error: GraphError) -> bool:
    return error.status == 404


class GraphClient:
    """Microsoft Graph in one tenant, signed in with the settings' client secret.

    Endpoints are discovered and the token fetched on first use, so configuring the provider talks to
    nobody. Thread-safe: the provider serves engine calls concurrently.
    """

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        timing: Timing | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.timing = timing or Timing.from_env(environ)
        self._session = session or requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._verify = ca_bundle(environ)
        self._lock = threading.Lock()
        self._token_lock = threading.Lock()
        self._endpoints: Endpoints | None = None
        self._token: tuple[str, float] | None = None
        self._caller: str | None = None

    @property
    def endpoints(self) -> Endpoints:
        with self._lock:
            if self._endpoints is None:
                self._endpoints = discover_endpoints(self.settings, self._session.get, self._verify)
            return self._endpoints

    def directory_object_url(self, object_id: str) -> str:
        """The ``@odata.id`` of a directory object, as owner references need it."""
        return f"{self.endpoints.graph}/v1.0/directoryObjects/{object_id}"

    def caller_object_id(self) -> str:
        """The signed-in principal's object id: the token's ``oid``, else its service principal's id."""
        if self._caller is None:
            claims = jwt.decode(self._access_token(), options={"verify_signature": False})
            caller = str(claims.get("oid") or "")
            if not caller:
                found = self.list(
                    "/servicePrincipals", {"$filter": f"appId eq '{quote(self.settings.client_id)}'"}
                )
                if len(found) != 1:
                    raise AuthenticationError(
                        "attempting to discover object ID for authenticated service principal: "
                        f"unexpected number of results, expected 1, received {len(found)}"
                    )
                caller = str(found[0]["id"])
            self._caller = caller
        return self._caller

    def get(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        version: str = "v1.0",
        retry_if: RetryIf | None = None,
    ) -> dict[str, Any]:
        return self._json(self.request("GET", path, params=params, version=version, retry_if=retry_if))

    def list(
        self, path: str, params: Mapping[str, str] | None = None, *, retry_if: RetryIf | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a collection, following ``@odata.nextLink``."""
        page = self.get(path, params, retry_if=retry_if)
        items = list(page.get("value") or [])
        while page.get("@odata.nextLink"):
            page = self._json(self.request("GET", path, url=str(page["@odata.nextLink"])))
            items.extend(page.get("value") or [])
        return items

    def post(self, path: str, body: Mapping[str, Any], *, retry_if: RetryIf | None = None) -> dict[str, Any]:
        return self._json(self.request("POST", path, body=body, retry_if=retry_if))

    def patch(self, path: str, body: Mapping[str, Any], *, retry_if: RetryIf | None = None) -> None:
        self.request("PATCH", path, body=body, retry_if=retry_if)

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def wait_until(self, done: Callable[[], bool], what: str, *, consecutive: int = 1) -> None:
        """Poll ``done`` until it is true ``consecutive`` times in a row, within the wait bound."""
        deadline = self._clock() + self.timing.wait_seconds
        streak = 0
        while True:
            streak = streak + 1 if done() else 0
            if streak >= consecutive:
                return
            if self._clock() + self.timing.poll_seconds > deadline:
                raise WaitTimeout(
                    f"gave up after {self.timing.wait_seconds:g} s waiting for {what} "
                    f"({WAIT_SECONDS_ENV} sets the bound)"
                )
            self._sleep(self.timing.poll_seconds)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        version: str = "v1.0",
        url: str | None = None,
        retry_if: RetryIf | None = None,
    ) -> requests.Response:
        """Send one Graph request; 2xx answers return, others raise :class:`GraphError`.

        ``retry_if`` names errors that mean replication lag: those are retried at the poll interval until
        the wait bound, after which the last error is raised inside a :class:`WaitTimeout`.
        """
        deadline = self._clock() + self.timing.wait_seconds
        target = url or f"{self.endpoints.graph}/{version}{path}"
        while True:
            try:
                return self._send(method, path, target, params, body, deadline)
            except GraphError as error:
                if retry_if is None or not retry_if(error):
                    raise
                if self._clock() + self.timing.poll_seconds > deadline:
                    raise WaitTimeout(
                        f"gave up after {self.timing.wait_seconds:g} s waiting for Microsoft Graph to "
                        f"replicate ({WAIT_SECONDS_ENV} sets the bound); last answer: {error}"
                    ) from error
                LOG.debug("retrying %s %s after %s (replication lag)", method, path, error.status)
                self._sleep(self.timing.poll_seconds)

    def _send(
        self,
        method: str,
        path: str,
        url: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        deadline: float,
    ) -> requests.Response:
        for attempt in range(MAX_THROTTLE_RETRIES + 1):
            try:
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    json=body,
                    headers={"Authorization": f"Bearer {self._access_token()}", "Accept": "application/json"},
                    timeout=TIMEOUT,
                    verify=self._verify,
                )
            except requests.RequestException as error:
                raise GraphError(method, path, message=f"{type(error).__name__}: {error}") from error
            request_id = response.headers.get("request-id", "")
            LOG.debug("%s %s -> %s request-id %s", method, path, response.status_code, request_id)
            if response.ok:
                return response
            failure = _graph_error(method, path, response)
            if response.status_code not in THROTTLED or attempt == MAX_THROTTLE_RETRIES:
                raise failure
            delay = _retry_after(response, attempt)
            if self._clock() + delay > deadline:
                raise WaitTimeout(
                    f"Microsoft Graph kept throttling {method} {path} (HTTP {response.status_code}, "
                    f"Retry-After {delay:g} s) beyond the {self.timing.wait_seconds:g} s bound: {failure}"
                ) from failure
            LOG.debug("throttled: waiting %.1f s before retrying %s %s", delay, method, path)
            self._sleep(delay)
        raise AssertionError("unreachable")

    def _access_token(self) -> str:
        # One token request at a time: the engine reads resources in parallel, and each would fetch its own.
        with self._token_lock:
            with self._lock:
                if self._token is not None and self._clock() < self._token[1]:
                    return self._token[0]
            return self._fetch_token()

    def _fetch_token(self) -> str:
        endpoints = self.endpoints
        token_url = self.settings.token_url(endpoints)
        try:
            response = self._session.post(
                token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.settings.client_id,
                    "client_secret": self.settings.client_secret.reveal(),
                    "scope": endpoints.graph_scope,
                },
                timeout=TIMEOUT,
                verify=self._verify,
            )
        except requests.RequestException as error:
            raise AuthenticationError(
                f"requesting a token from {token_url}: {type(error).__name__}: {self._scrub(str(error))}"
            ) from None
        payload = _json_or_empty(response)
        if response.status_code != 200 or not payload.get("access_token"):
            description = self._scrub(str(payload.get("error_description") or response.reason))
            raise AuthenticationError(
                f"client {self.settings.client_id} could not sign in to tenant {self.settings.tenant_id} at "
                f"{token_url}: HTTP {response.status_code} {payload.get('error', '')}: {description}"
            )
        lifetime = float(payload.get("expires_in") or 3600)
        token = str(payload["access_token"])
        with self._lock:
            self._token = (token, self._clock() + max(lifetime - TOKEN_RENEWAL_MARGIN, lifetime / 2))
        return token

    def _scrub(self, text: str) -> str:
        secret = self.settings.client_secret.reveal()
        return text.replace(secret, "***") if secret else text

    @staticmethod
    def _json(response: requests.Response) -> dict[str, Any]:
        return _json_or_empty(response)


def quote(value: str) -> str:
    """``value`` inside an OData string literal."""
    return value.replace("'", "''")


def _graph_error(method: str, path: str, response: requests.Response) -> GraphError:
    error = _json_or_empty(response).get("error")
    details: dict[str, Any] = error if isinstance(error, dict) else {}
    inner = details.get("innerError") or details.get("innererror") or {}
    request_id = response.headers.get("request-id") or (
        inner.get("request-id") if isinstance(inner, dict) else ""
    )
    return GraphError(
        method,
        path,
        status=response.status_code,
        code=str(details.get("code") or ""),
        message=str(details.get("message") or response.reason or ""),
        request_id=str(request_id or ""),
    )


def _json_or_empty(response: requests.Response) -> dict[str, Any]:
    if not response.content:
        return {}
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _retry_after(response: requests.Response, attempt: int) -> float:
    header = response.headers.get("Retry-After", "").strip()
    if header.isdigit():
        return float(header)
    if header:
        moment = email.utils.parsedate_to_datetime(header)
        if moment is not None:
            return max(0.0, moment.timestamp() - time.time())
    return float(min(2**attempt, 30))


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {raw!r}")
    return value
