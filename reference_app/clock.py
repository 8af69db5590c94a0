"""The device clock: it ticks with real time from the value last set, and can be set or moved.

The clock is kept as an offset from the host's wall clock in the device file, so it survives
an app restart and a wipe, as a phone's clock does. Listeners (the scheduler) are told about
every jump so that a job that falls due runs at once.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
import zoneinfo
from collections.abc import Callable

from reference_app.device import DeviceState

log = logging.getLogger(__name__)

DEFAULT_TIMEZONE = "UTC"


class InvalidTimezoneError(ValueError):
    """The time zone is not an IANA name this system knows."""


def load_timezone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidTimezoneError(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin or UTC"
        ) from None


class DeviceClock:
    """Milliseconds since the epoch as the device sees them."""

    def __init__(self, device: DeviceState):
        self.device = device
        self._device = device
        self._lock = threading.Lock()
        self._offset_ms = int(device.get("clock_offset_ms", 0))
        self._timezone_name = str(device.get("timezone", DEFAULT_TIMEZONE))
        self._timezone = load_timezone(self._timezone_name)
        self._listeners: list[Callable[[], None]] = []

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self._offset_ms

    @property
    def timezone_name(self) -> str:
        return self._timezone_name

    @property
    def timezone(self) -> zoneinfo.ZoneInfo:
        return self._timezone

    def local_datetime(self, epoch_ms: int | None = None) -> datetime.datetime:
        """Return a device-local aware datetime for ``epoch_ms`` (default: now)."""
        value = self.now_ms() if epoch_ms is None else epoch_ms
        return datetime.datetime.fromtimestamp(value / 1000, tz=self._timezone)

    def add_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def set(self, epoch_ms: int, timezone: str | None = None) -> None:
        """Set the clock to ``epoch_ms`` (and the time zone when given), then tell listeners."""
        if epoch_ms < 0:
            raise ValueError(f"epoch_ms must not be negative, got {epoch_ms}")
        zone = load_timezone(timezone) if timezone else None
        with self._lock:
            self._offset_ms = int(epoch_ms) - int(time.time() * 1000)
            if zone is not None:
                self._timezone, self._timezone_name = zone, timezone
            self._device.update(clock_offset_ms=self._offset_ms, timezone=self._timezone_name)
        log.info("clock set epoch_ms=%d timezone=%s", epoch_ms, self._timezone_name)
        self._notify()

    def advance(self, delta_ms: int) -> None:
        """Move the clock forward by ``delta_ms`` (not backward), then tell listeners."""
        if delta_ms < 0:
            raise ValueError(f"delta_ms must not be negative, got {delta_ms}")
        with self._lock:
            self._offset_ms += int(delta_ms)
            self._device.update(clock_offset_ms=self._offset_ms)
        log.info("clock advanced delta_ms=%d", delta_ms)
        self._notify()

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()
