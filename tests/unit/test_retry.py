"""The one retry policy (mscloud.retry): the waits, the budget on the injected clock, what ends it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mscloud.retry import Backoff, Retry, RetryPolicy, Wait
from tests.fakes.clock import FakeClock


class Failed(Exception):
    pass


def always(retry_after: str | None = None) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        raise Retry(Failed(f"attempt {len(calls)}"), retry_after)

    return calls, attempt


def test_success_after_retries_with_exponential_backoff() -> None:
    clock = FakeClock()
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise Retry(Failed("not yet"))
        return "done"

    assert RetryPolicy(60, clock=clock, sleep=clock.sleep).run(attempt) == "done"
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_retry_after_is_honoured_and_no_wait_ends_past_the_budget() -> None:
    clock = FakeClock()
    calls, attempt = always("25")

    with pytest.raises(RuntimeError, match="gave up after 3 attempts"):
        RetryPolicy(60, clock=clock, sleep=clock.sleep).run(
            attempt,
            exhausted=lambda failure, attempts: RuntimeError(f"gave up after {attempts} attempts: {failure}"),
        )
    assert (clock.sleeps, len(calls)) == ([25.0, 25.0], 3)


def test_the_last_failure_is_raised_when_nothing_else_is_asked() -> None:
    clock = FakeClock()
    _, attempt = always()

    with pytest.raises(Failed, match="attempt 5"):
        RetryPolicy(30, clock=clock, sleep=clock.sleep).run(attempt)
    assert sum(clock.sleeps) <= 30


def test_use_whole_budget_shortens_the_last_wait_and_tells_each_wait() -> None:
    clock = FakeClock(start=1000.0)
    _, attempt = always()
    waits: list[Wait] = []
    policy = RetryPolicy(30, Backoff(1, 2, 8), clock, clock.sleep, use_whole_budget=True)

    with pytest.raises(Failed):
        policy.run(attempt, before_wait=waits.append)

    assert clock.sleeps == [1, 2, 4, 8, 8, 7]
    assert [(wait.attempt, wait.seconds, wait.remaining) for wait in waits[:2]] == [(1, 1, 30), (2, 2, 29)]


def test_other_exceptions_are_not_retried() -> None:
    clock = FakeClock()

    def attempt() -> None:
        raise ValueError("a bug, not a failure to wait out")

    with pytest.raises(ValueError, match="a bug"):
        RetryPolicy(60, clock=clock, sleep=clock.sleep).run(attempt)
    assert clock.sleeps == []
