"""Typed errors of the Android device layer.

Every error here is an ``InfrastructureError``: it reports that the device, adb or the
on-device UI server failed, never that the app under test is wrong. Reports keep them apart from failed
checks. Messages name the device serial and what to do next, and never contain a recovery key.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import DeviceError, InfrastructureError


class AdbServerUnavailableError(DeviceError):
    """No adb server listens at the configured address."""


class DeviceNotFoundError(DeviceError):
    """The requested serial is not attached (the message lists the attached devices)."""


class DeviceOfflineError(DeviceError):
    """The device is attached but offline, unauthorized, or dropped off during a command."""


class AdbTimeoutError(DeviceError):
    """An adb request (connect, shell, sync) did not finish in time."""


class AdbCommandError(DeviceError):
    """A shell command on the device exited non-zero or printed a failure."""

    def __init__(self, message: str, *, exit_code: int | None = None, output: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.output = output


class ApkInstallError(AdbCommandError):
    """``pm install`` rejected the APK; ``reason`` is the INSTALL_FAILED_* code."""

    def __init__(self, message: str, *, reason: str, output: str = "") -> None:
        super().__init__(message, output=output)
        self.reason = reason


class AppDataAccessError(DeviceError):
    """The app's private files cannot be read: no ``run-as`` (not debuggable) and no root."""


class ClockError(DeviceError):
    """The device refused a clock or time-zone change, or reports a different time."""


class UiServerError(InfrastructureError):
    """The on-device uiautomator2 server did not start or stopped responding."""


class UiElementNotFoundError(InfrastructureError):
    """A UI element named by the app profile did not appear in time.

    ``hierarchy`` is the window dump taken when the wait ran out, so a report can show what
    the screen showed instead. ``dump_path`` is where it was saved, if it was.
    """

    def __init__(
        self, message: str, *, hierarchy: str | None = None, dump_path: Path | None = None
    ) -> None:
        super().__init__(message)
        self.hierarchy = hierarchy
        self.dump_path = dump_path


class ProfileMismatchError(InfrastructureError):
    """The screen or the log did not show what the app profile expects (a value, a text)."""


class LogWaitTimeoutError(InfrastructureError):
    """No log line matched the awaited pattern before the timeout."""
