"""Airplane mode, Wi-Fi and mobile data, with the state saved and restored around a run.

The backup job of a messenger typically waits for Wi-Fi (or any unmetered network) by
default, so tests switch these radios to check that behaviour. Each switch is verified by
reading the global settings back until they match, within a bounded wait.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from harness.android.device import AndroidDevice
from harness.android.errors import AdbCommandError

log = logging.getLogger(__name__)

SETTLE_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.2


@dataclasses.dataclass(frozen=True)
class NetworkState:
    airplane: bool
    wifi: bool
    data: bool


class DeviceNetwork:
    """Switches one device's radios."""

    def __init__(self, device: AndroidDevice, *, settle_timeout_s: float = SETTLE_TIMEOUT_S) -> None:
        self.device = device
        self.settle_timeout_s = settle_timeout_s
        self.saved: NetworkState | None = None

    def state(self) -> NetworkState:
        values = {name: self.device.shell(["settings", "get", "global", name]).stdout.strip()
                  for name in ("airplane_mode_on", "wifi_on", "mobile_data")}
        return NetworkState(airplane=values["airplane_mode_on"] == "1",
                            wifi=values["wifi_on"] in ("1", "2"),  # 2: on, kept across airplane mode
                            data=values["mobile_data"] == "1")

    def save(self) -> NetworkState:
        if self.saved is None:
            self.saved = self.state()
        return self.saved

    def set_airplane_mode(self, enabled: bool) -> None:
        self.save()
        self.device.shell(["cmd", "connectivity", "airplane-mode", "enable" if enabled else "disable"])
        self._settle("airplane mode", lambda state: state.airplane == enabled)

    def set_wifi(self, enabled: bool) -> None:
        self.save()
        self.device.shell(["svc", "wifi", "enable" if enabled else "disable"])
        self._settle("Wi-Fi", lambda state: state.wifi == enabled)

    def set_mobile_data(self, enabled: bool) -> None:
        self.save()
        self.device.shell(["svc", "data", "enable" if enabled else "disable"])
        self._settle("mobile data", lambda state: state.data == enabled)

    def restore(self) -> None:
        """Put the radios back as :meth:`save` found them."""
        if self.saved is None:
            return
        saved, current = self.saved, self.state()
        if current.airplane != saved.airplane:
            self.set_airplane_mode(saved.airplane)
        if current.wifi != saved.wifi:
            self.set_wifi(saved.wifi)
        if current.data != saved.data:
            self.set_mobile_data(saved.data)
        self.saved = None
        log.info("device %s radios restored: %s", self.device.serial, saved)

    def _settle(self, what: str, reached) -> None:
        deadline = time.monotonic() + self.settle_timeout_s
        while True:
            state = self.state()
            if reached(state):
                log.info("device %s %s switched: %s", self.device.serial, what, state)
                return
            if time.monotonic() >= deadline:
                raise AdbCommandError(f"device {self.device.serial} did not switch {what} within "
                                      f"{self.settle_timeout_s:g} s (now {state})")
            time.sleep(POLL_INTERVAL_S)
