"""The device clock: automatic time off, set and advance the clock, time zone, restore.

Setting the wall clock needs a privileged caller: ``cmd alarm set-time`` (AlarmManager's shell
command) is refused to the plain shell user, so the controller uses adbd running as root
(``adb root`` on userdebug emulator images) or ``su 0``. Phones without root cannot have their
clock set; :class:`ClockError` says so. Every change is verified by reading the clock back.

Lifecycle: :meth:`DeviceClock.take_control` saves the automatic-time settings and the time zone
and turns automatic time off; :meth:`DeviceClock.restore` puts them back and resets the clock
to the host's time, so a device is never left in the future after a run.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from harness.android.device import AndroidDevice, ShellResult
from harness.android.errors import ClockError
from harness.errors import UsageError

log = logging.getLogger(__name__)

DEFAULT_TOLERANCE_MS = 2_000


@dataclasses.dataclass(frozen=True)
class ClockSettings:
    """What :meth:`DeviceClock.restore` puts back."""

    auto_time: str
    auto_time_zone: str
    timezone: str


class DeviceClock:
    """Reads and changes one device's wall clock and time zone."""

    def __init__(self, device: AndroidDevice, *, tolerance_ms: int = DEFAULT_TOLERANCE_MS) -> None:
        self.device = device
        self.tolerance_ms = tolerance_ms
        self.saved: ClockSettings | None = None
        self._privileged: list[str] | None = None

    # Reading ------------------------------------------------------------------------------------
    def now_ms(self) -> int:
        """Return the device's wall clock in epoch milliseconds.

        mksh's ``$EPOCHREALTIME`` gives microseconds; ``date +%s`` (whole seconds) is the
        fallback for shells without it.
        """
        text = self.device.shell("echo $EPOCHREALTIME").stdout.strip()
        try:
            return round(float(text) * 1000)
        except ValueError:
            seconds = self.device.shell(["date", "+%s"]).stdout.strip()
            try:
                return int(seconds) * 1000
            except ValueError:
                raise ClockError(f"cannot read the clock of {self.device.serial}: `date +%s` printed "
                                 f"{seconds!r}") from None

    def timezone(self) -> str:
        return self.device.getprop("persist.sys.timezone") or "UTC"

    # Control ------------------------------------------------------------------------------------
    def take_control(self) -> None:
        """Save the clock settings (once) and turn automatic time and time zone off."""
        if self.saved is None:
            settings = self._global_settings("auto_time", "auto_time_zone")
            self.saved = ClockSettings(settings["auto_time"], settings["auto_time_zone"], self.timezone())
            log.info("device %s clock settings saved: %s", self.device.serial, self.saved)
        self.device.shell(["settings", "put", "global", "auto_time", "0"])
        self.device.shell(["settings", "put", "global", "auto_time_zone", "0"])
        current = self._global_settings("auto_time", "auto_time_zone")
        if current != {"auto_time": "0", "auto_time_zone": "0"}:
            raise ClockError(f"device {self.device.serial} kept automatic time on ({current}); "
                             "turn off 'Set time automatically' in Settings")

    def set(self, epoch_ms: int, timezone: str | None = None) -> None:
        """Set the clock (and optionally the IANA time zone), then verify both."""
        self.take_control()
        if timezone is not None:
            self.set_timezone(timezone)
        self._privileged_command(["cmd", "alarm", "set-time", str(int(epoch_ms))], "set the clock")
        set_at = time.monotonic()
        self.verify(epoch_ms, set_at)
        log.info("device %s clock set to %d", self.device.serial, epoch_ms)

    def advance(self, delta_ms: int) -> int:
        """Move the clock forward by ``delta_ms``; return the new time."""
        if delta_ms < 0:
            raise UsageError(f"cannot advance the clock by a negative delta ({delta_ms} ms)")
        target = self.now_ms() + delta_ms
        self.set(target)
        return target

    def set_timezone(self, timezone: str) -> None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(f"unknown time zone {timezone!r}: use an IANA name such as Europe/Berlin") from None
        self.take_control()
        self._privileged_command(["cmd", "alarm", "set-timezone", timezone], "set the time zone")
        reported = self.timezone()
        if reported != timezone:
            raise ClockError(f"device {self.device.serial} reports time zone {reported} after setting "
                             f"{timezone}; automatic time zone may still be on")

    def verify(self, expected_ms: int, since_monotonic: float | None = None) -> int:
        """Check the device clock reads ``expected_ms`` (plus time elapsed since it was set)."""
        elapsed_ms = round((time.monotonic() - since_monotonic) * 1000) if since_monotonic else 0
        reported = self.now_ms()
        drift = reported - (expected_ms + elapsed_ms)
        if abs(drift) > self.tolerance_ms:
            raise ClockError(
                f"device {self.device.serial} clock reads {reported} ms, expected {expected_ms + elapsed_ms} "
                f"ms (off by {drift / 1000:+.1f} s); automatic time may have reset it, or the device "
                "refused the change"
            )
        return reported

    def restore(self) -> None:
        """Put back the saved settings and time zone, with the clock at the host's time."""
        if self.saved is None:
            return
        saved = self.saved
        self._privileged_command(["cmd", "alarm", "set-time", str(int(time.time() * 1000))],
                                 "reset the clock")
        if self.timezone() != saved.timezone:
            self._privileged_command(["cmd", "alarm", "set-timezone", saved.timezone], "restore the time zone")
        self.device.shell(["settings", "put", "global", "auto_time", saved.auto_time])
        self.device.shell(["settings", "put", "global", "auto_time_zone", saved.auto_time_zone])
        self.saved = None
        log.info("device %s clock settings restored", self.device.serial)

    # Helpers ------------------------------------------------------------------------------------
    def _global_settings(self, *names: str) -> dict[str, str]:
        return {name: self.device.shell(["settings", "get", "global", name]).stdout.strip() for name in names}

    def _privileged_command(self, args: list[str], purpose: str) -> ShellResult:
        prefix = self._privilege_prefix()
        result = self.device.shell(prefix + args, check=False)
        if result.exit_code != 0 or "exception" in result.output.lower():
            raise ClockError(f"device {self.device.serial} refused to {purpose}: "
                             f"{result.output.strip().splitlines()[-1] if result.output.strip() else 'no output'}")
        return result

    def _privilege_prefix(self) -> list[str]:
        """Return [] when adbd runs as root, ["su", "0"] on rooted devices; raise otherwise."""
        if self._privileged is None:
            if "uid=0" in self.device.shell(["id"], check=False).stdout:
                self._privileged = []
            elif "uid=0" in self.device.shell(["su", "0", "id"], check=False).stdout:
                self._privileged = ["su", "0"]
            else:
                raise ClockError(
                    f"cannot change the clock of {self.device.serial}: it needs root (`adb root` on an "
                    "emulator image without Google Play, or a rooted phone)"
                )
        return self._privileged
