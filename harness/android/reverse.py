"""``adb reverse``: let the device reach a host service (the stub) at its own localhost."""

from __future__ import annotations

import logging

import adbutils

from harness.android.device import AndroidDevice
from harness.android.errors import AdbCommandError

log = logging.getLogger(__name__)


class ReverseTunnel:
    """Device ``tcp:device_port`` → host ``tcp:host_port``, removed again on close.

    Only the rule this object created is removed; other reversals on the device (another
    tool's, or a parallel run's on a different port) stay.
    """

    def __init__(self, device: AndroidDevice, host_port: int, device_port: int | None = None) -> None:
        self.device = device
        self.host_port = host_port
        self.device_port = device_port or host_port
        self.open = False

    @property
    def remote(self) -> str:
        return f"tcp:{self.device_port}"

    @property
    def local(self) -> str:
        return f"tcp:{self.host_port}"

    def device_url(self, scheme: str = "http") -> str:
        """The base URL an app on the device uses to reach the host service."""
        return f"{scheme}://127.0.0.1:{self.device_port}"

    def start(self) -> ReverseTunnel:
        self.device.call(f"adb reverse {self.remote} {self.local}",
                         lambda: self.device.adb.reverse(self.remote, self.local))
        if not self.is_active():
            raise AdbCommandError(f"adb reverse {self.remote} {self.local} on {self.device.serial} "
                                  "reported success but the rule is not listed")
        self.open = True
        log.info("device %s reaches host port %d at its localhost:%d", self.device.serial,
                 self.host_port, self.device_port)
        return self

    def is_active(self) -> bool:
        items = self.device.call("adb reverse --list", self.device.adb.reverse_list)
        return any(item.remote == self.remote and item.local == self.local for item in items)

    def close(self) -> None:
        """Remove the rule; a rule already gone (device restarted) is not an error."""
        if not self.open:
            return
        try:
            self.device.call(f"adb reverse --remove {self.remote}",
                             lambda: self.device.adb.reverse_remove(self.remote))
        except AdbCommandError as error:
            if "not found" not in str(error):
                raise
            log.info("reverse %s on %s was already gone", self.remote, self.device.serial)
        self.open = False

    def __enter__(self) -> ReverseTunnel:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def list_reverses(device: AndroidDevice) -> list[adbutils.ReverseItem]:
    return device.call("adb reverse --list", device.adb.reverse_list)
