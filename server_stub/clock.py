"""The server clock that every time-dependent rule reads.

Credential windows, day-truncated refresh times, TTL expiry, upload expiry and CDN token age
all use ``Clock.now()``, so the admin API can move the stub through days in one request. The
clock is the wall clock plus an offset, or a frozen instant.
"""

from __future__ import annotations

import threading
import time
from typing import Any

DAY = 86400


def day_start(epoch_seconds: float) -> int:
    """Return the start of the UTC day that contains ``epoch_seconds``."""
    return int(epoch_seconds) // DAY * DAY


class Clock:
    def __init__(self, offset_seconds: float = 0.0, frozen_at: float | None = None):
        self._offset = offset_seconds
        self._frozen_at = frozen_at
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return time.time() + self._offset

    def set(self, now: float, frozen: bool = False) -> None:
        """Make the clock read ``now``; it keeps ticking from there unless ``frozen``."""
        with self._lock:
            if frozen:
                self._frozen_at = float(now)
                self._offset = float(now) - time.time()
            else:
                self._frozen_at = None
                self._offset = float(now) - time.time()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds
            if self._frozen_at is not None:
                self._frozen_at += seconds

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0
            self._frozen_at = None

    def state(self) -> dict[str, Any]:
        with self._lock:
            frozen_at = self._frozen_at
            offset = self._offset
        now = frozen_at if frozen_at is not None else time.time() + offset
        return {"now": now, "offset_seconds": offset, "frozen": frozen_at is not None}

    def restore(self, state: dict[str, Any]) -> None:
        """Load a state saved by ``state()`` (used across restarts on one data directory)."""
        with self._lock:
            self._offset = float(state.get("offset_seconds", 0.0))
            self._frozen_at = float(state["now"]) if state.get("frozen") else None
