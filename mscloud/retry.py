"""The one retry policy of pop3-oauth: bounded retries with an injectable clock and sleep, on tenacity.

An attempt asks to be repeated by raising :class:`Retry` with the failure it met. Between attempts the
policy waits what the server asked for in ``Retry-After`` (seconds or an HTTP date) when the attempt passed
it on, otherwise an exponential :class:`Backoff` (1, 2, 4, ... seconds, at most 30). It stops when the
budget of seconds is spent and raises the last failure (or what ``exhausted`` makes of it):

- by default it never starts a wait that would end past the budget (the HTTP clients: the caller hears of
  the failure while there is still time to act on it);
- with ``use_whole_budget`` it shortens the last wait so that the final attempt comes as the budget ends
  (``popctl verify --wait``: the operator asked to keep trying for exactly that long).

The budget is measured on the injected clock - tenacity's own ``stop_after_delay`` reads
``time.monotonic`` - and the injected ``sleep`` does the waiting, so tests take no time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import NoReturn, TypeVar

import tenacity

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Waits of ``initial`` seconds, growing by ``factor`` after each attempt, never above ``maximum``."""

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 30.0

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.initial * self.factor ** (attempt - 1), self.maximum)


DEFAULT_BACKOFF = Backoff()
MAX_BACKOFF_SECONDS = DEFAULT_BACKOFF.maximum


def retry_delay(retry_after: str | None, attempt: int, backoff: Backoff = DEFAULT_BACKOFF) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    The server's ``Retry-After`` when it sent a usable one (seconds, or an HTTP date), otherwise ``backoff``.
    """
    if retry_after:
        try:
            return max(float(retry_after), 0.0)
        except ValueError:
            pass
        try:
            return max(parsedate_to_datetime(retry_after).timestamp() - time.time(), 0.0)
        except (TypeError, ValueError):
            pass
    return backoff.delay(attempt)


class Retry(Exception):
    """Raised by an attempt that may be repeated; it never leaves :meth:`RetryPolicy.run`.

    ``reason`` is the failure the attempt met (raised when the budget is spent); ``retry_after`` is the
    server's ``Retry-After`` header, when it sent one.
    """

    def __init__(self, reason: Exception, retry_after: str | None = None) -> None:
        super().__init__(str(reason))
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class Wait:
    """What a ``before_wait`` observer is told: the failed attempt (1-based), its failure, the wait and the
    budget left, in seconds."""

    attempt: int
    reason: Exception
    seconds: float
    remaining: float


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``budget`` seconds of attempts; see the module docstring for the waits and the stop."""

    budget: float
    backoff: Backoff = DEFAULT_BACKOFF
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    use_whole_budget: bool = False

    def run(
        self,
        attempt: Callable[[], T],
        *,
        exhausted: Callable[[Exception, int], Exception] | None = None,
        before_wait: Callable[[Wait], None] | None = None,
    ) -> T:
        """``attempt()``, repeated while it raises :class:`Retry` and the budget lasts.

        When the budget is spent, raises ``exhausted(last failure, attempts)``, or the last failure itself.
        Any other exception of ``attempt`` propagates at once.
        """
        deadline = self.clock() + self.budget

        def wait(state: tenacity.RetryCallState) -> float:
            delay = retry_delay(_retry_of(state).retry_after, state.attempt_number, self.backoff)
            if self.use_whole_budget:
                delay = min(delay, max(deadline - self.clock(), 0.0))
            return delay

        def stop(state: tenacity.RetryCallState) -> bool:
            remaining = deadline - self.clock()
            return remaining <= 0 if self.use_whole_budget else state.upcoming_sleep > remaining

        def notify(state: tenacity.RetryCallState) -> None:
            if before_wait is not None:
                reason = _retry_of(state).reason
                before_wait(Wait(state.attempt_number, reason, state.upcoming_sleep, deadline - self.clock()))

        def give_up(state: tenacity.RetryCallState) -> NoReturn:
            reason = _retry_of(state).reason
            raise (reason if exhausted is None else exhausted(reason, state.attempt_number)) from None

        retrying = tenacity.Retrying(
            sleep=self.sleep,
            stop=stop,
            wait=wait,
            retry=tenacity.retry_if_exception_type(Retry),
            before_sleep=notify,
            retry_error_callback=give_up,
        )
        return retrying(attempt)


def _retry_of(state: tenacity.RetryCallState) -> Retry:
    error = state.outcome.exception() if state.outcome is not None else None
    if not isinstance(error, Retry):
        raise TypeError("the retry policy retries only on Retry")
    return error
