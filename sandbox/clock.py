"""The emulator's clock: the machine's clock plus an offset kept in a small file, movable while it runs.

``python -m sandbox clock set 2027-06-01T09:00:00Z`` writes the offset; the daemon's :class:`MovableClock`
reads the file again whenever it changed, so every token, secret expiry and POP3 introspection decision
of the running emulator follows at once. ``clock reset`` goes back to the machine's clock.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path


class MovableClock:
    """Epoch seconds (call it) from ``time.time()`` plus the offset in ``path`` (none: no offset)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._offset = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return time.time() + self.offset()

    def offset(self) -> float:
        """The offset in seconds; the file is read again only when its modification time or size changed."""
        with self._lock:
            try:
                status = self.path.stat()
            except FileNotFoundError:
                self._stamp, self._offset = None, 0.0
                return 0.0
            stamp = (status.st_mtime_ns, status.st_size)
            if stamp != self._stamp:
                self._offset = read_offset(self.path)
                self._stamp = stamp
            return self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self(), UTC)


def read_offset(path: Path) -> float:
    """The offset written by :func:`set_clock` (0 when the file is missing or unreadable)."""
    try:
        return float(json.loads(path.read_text())["offsetSeconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def set_clock(path: Path, moment: datetime) -> float:
    """Make the clock read ``moment`` now (it then runs on at the machine's pace); returns the offset."""
    offset = moment.timestamp() - time.time()
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps({"offsetSeconds": offset, "setTo": moment.isoformat()}))
    temporary.replace(path)
    return offset


def reset_clock(path: Path) -> None:
    """Back to the machine's clock."""
    path.unlink(missing_ok=True)
