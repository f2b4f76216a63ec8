"""The HTTP core of the Microsoft clients (the Exchange admin API and Microsoft Graph).

One :class:`HttpCore` per client: one ``requests`` session, explicit timeouts, a bearer token for the
client's scope on every request, a fresh ``client-request-id`` per attempt, bodies read as sent (a
``Content-Encoding`` that does not match the bytes is not trusted), ``@odata.nextLink`` followed only on the
host the client was pointed at (a paging link elsewhere would carry the bearer token to a stranger), and
the one retry policy of :mod:`mscloud.retry`:

- 429, 503 and 504, and answers the client classifies as throttling, are retried, honouring ``Retry-After``;
- a request that got no answer is retried when it is safe to repeat (``replayable``); one that is not
  (Exchange's New-/Add-) reports an unknown outcome instead, and so does an unclassified 5xx answer to it;
- a TLS failure is never retried;
- all within ``max_retry_seconds`` per request, measured on the injected clock.

A client names its failures through :class:`Failures`; none of them carries a token. ``REQUESTS_CA_BUNDLE``
applies, as everywhere in ``requests``.
"""

from __future__ import annotations

import gzip
import json
import logging
import time
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict
from urllib.parse import urlsplit

import requests
import urllib3

from mscloud.clouds import Cloud
from mscloud.retry import Retry, RetryPolicy

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({429, 503, 504})
DEFAULT_TIMEOUT = (10.0, 60.0)


class TokenSource(Protocol):
    """Gives bearer tokens for a tenant; implementations are thread-safe."""

    def get_token(self, tenant_id: str, cloud: Cloud, scope: str | None = None) -> str:
        """An access token for ``scope`` (default ``cloud.exchange_scope``) in ``tenant_id``."""
        ...


@dataclass(frozen=True)
class Reply:
    """An HTTP answer. ``body`` is as sent (decompressed only when it really is gzip or deflate);
    ``request_id`` is the server's ``request-id`` when it sent one, else the ``client-request-id``."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes
    request_id: str

    def json(self) -> Any:
        """The body as JSON (``None`` when it is empty); raises ValueError when it is not JSON."""
        text = self.body.replace(b"\x00", b"").strip()
        return json.loads(text) if text else None


class Failures(Protocol):
    """How a client names the failures of one request (Exchange: per cmdlet; Graph: per path)."""

    def no_answer(self, url: str, error: Exception, request_id: str) -> Exception:
        """No (whole) HTTP answer from ``url``: a TLS failure (``requests.exceptions.SSLError``), or a
        connection refused, reset or timed out - before or while the body came."""
        ...

    def failed(self, reply: Reply) -> Exception:
        """The error an answer with a failure status stands for."""
        ...

    def throttled(self, failure: Exception) -> bool:
        """Whether ``failure`` says the service is throttling, whatever the status."""
        ...

    def outcome_unknown(self, failure: Exception) -> Exception | None:
        """The error for a request that is not safe to repeat and may have taken effect (no answer, or a
        5xx); None when ``failure`` says more than that (then it is handled like any other)."""
        ...

    def exhausted(self, failure: Exception, attempts: int, budget: float) -> Exception:
        """The error to raise when retries of ``failure`` used up the budget."""
        ...

    def refused_link(self, message: str) -> Exception:
        """The error for a paging link to another host."""
        ...


class Transport(TypedDict, total=False):
    """How a client's requests travel; every key has a default (the client's, else :class:`HttpCore`'s).

    ``clock`` and ``sleep`` are injectable so tests do not wait; ``max_retry_seconds`` bounds the time one
    request may spend waiting out throttling and 5xx; ``timeout`` is (connect, read) in seconds.
    """

    session: requests.Session | None
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    max_retry_seconds: float
    timeout: tuple[float, float]


class HttpCore:
    """Sends the requests of one client in one tenant; thread-safe as far as ``requests.Session`` is."""

    def __init__(
        self,
        tokens: TokenSource,
        tenant_id: str,
        cloud: Cloud,
        scope: str,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        max_retry_seconds: float = 60.0,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.tenant_id = tenant_id
        self.cloud = cloud
        self._tokens = tokens
        self._scope = scope
        self._session = session or requests.Session()
        self._timeout = timeout
        self.policy = RetryPolicy(max_retry_seconds, clock=clock, sleep=sleep)

    def close(self) -> None:
        self._session.close()

    def send(
        self,
        method: str,
        url: str,
        failures: Failures,
        *,
        replayable: bool,
        headers: Callable[[str], Mapping[str, str]] | None = None,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> Reply:
        """One request under the retry policy; returns a 2xx :class:`Reply` or raises what ``failures`` names.

        ``headers(token)`` adds the client's own headers (some depend on the token).
        """

        def attempt() -> Reply:
            request_id = str(uuid.uuid4())
            token = self._tokens.get_token(self.tenant_id, self.cloud, self._scope)
            sent = {
                "Authorization": f"Bearer {token}",
                "client-request-id": request_id,
                **(headers(token) if headers is not None else {}),
            }
            try:
                response = self._session.request(
                    method, url, headers=sent, json=json, params=params, timeout=self._timeout, stream=True
                )
                with response:
                    body = _raw_body(response)
            except requests.exceptions.SSLError as error:
                raise failures.no_answer(url, error, request_id) from None
            except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
                failure = failures.no_answer(url, error, request_id)
                raise (
                    Retry(failure) if replayable else failures.outcome_unknown(failure) or failure
                ) from None
            reply = Reply(
                response.status_code,
                response.reason or "",
                response.headers,
                body,
                response.headers.get("request-id") or response.headers.get("x-ms-request-id") or request_id,
            )
            if 200 <= reply.status < 300:
                return reply
            failure = failures.failed(reply)
            unknown = failures.outcome_unknown(failure) if reply.status >= 500 and not replayable else None
            if unknown is not None:
                raise unknown
            if reply.status in RETRYABLE_STATUSES or failures.throttled(failure):
                raise Retry(failure, reply.headers.get("Retry-After"))
            raise failure

        return self.policy.run(
            attempt,
            exhausted=lambda failure, attempts: failures.exhausted(failure, attempts, self.policy.budget),
            before_wait=lambda wait: log.info(
                "%s %s: %s; retrying in %.1f s", method, urlsplit(url).path, wait.reason, wait.seconds
            ),
        )

    def pages(
        self, url: str, fetch: Callable[[str, bool], Mapping[str, Any]], failures: Failures
    ) -> list[dict[str, Any]]:
        """The objects in ``value`` of every page: ``fetch(url, first)`` reads one page, starting at ``url``
        and following ``@odata.nextLink`` as long as it stays on ``url``'s scheme and host."""
        items: list[dict[str, Any]] = []
        link: str | None = url
        first = True
        while link is not None:
            page = fetch(link, first)
            items.extend(item for item in page.get("value") or [] if isinstance(item, dict))
            try:
                link = same_origin_link(url, page.get("@odata.nextLink"))
            except ValueError as error:
                raise failures.refused_link(str(error)) from None
            first = False
        return items


def same_origin_link(base_url: str, link: object) -> str | None:
    """``link`` if it is on ``base_url``'s scheme and host; None when there is no link.

    Raises ValueError naming the foreign host otherwise.
    """
    if not isinstance(link, str) or not link:
        return None
    ours, theirs = urlsplit(base_url), urlsplit(link)
    if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
        raise ValueError(f"refusing a paging link to another host ({theirs.netloc})")
    return link


def _raw_body(response: requests.Response) -> bytes:
    """The body as sent, decompressed only when it really is gzip/deflate (never trusts Content-Encoding).

    A 403 from Exchange can be NUL bytes labelled gzip; ``requests`` would raise a decoding error on it.
    """
    raw = response.raw.read(decode_content=False) or b""
    encoding = response.headers.get("Content-Encoding", "").lower()
    if encoding == "gzip" and raw[:2] == b"\x1f\x8b":
        return gzip.decompress(raw)
    if encoding == "deflate":
        try:
            return zlib.decompress(raw)
        except zlib.error:
            return raw
    return raw
