"""A clock for code that takes ``clock`` and ``sleep`` callables: sleeping advances time, instantly."""

from __future__ import annotations


class FakeClock:
    """An injectable monotonic clock whose ``sleep`` records the delay and advances time at once."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
