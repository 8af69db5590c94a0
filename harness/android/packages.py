"""Install, configure, start and stop the app under test with ``pm`` and ``am``."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.android.device import AndroidDevice, ShellResult
from harness.android.errors import AdbCommandError, ApkInstallError
from harness.errors import UsageError

log = logging.getLogger(__name__)

STAGING_DIR = "/data/local/tmp"
_FAILURE = re.compile(r"Failure \[([A-Z_]+)")
ExtraValue = str | bool | int | float


@dataclasses.dataclass(frozen=True)
class Intent:
    """An intent for ``am start`` or ``am broadcast``; extras keep their Python types.

    ``str`` extras become ``--es``, ``bool`` ``--ez``, ``int`` ``--ei`` (``--el`` beyond 32
    bits) and ``float`` ``--ef``, the typed getters the app reads them with.
    """

    action: str | None = None
    component: str | None = None  # "package/.Activity"
    package: str | None = None
    data: str | None = None
    categories: tuple[str, ...] = ()
    extras: Mapping[str, ExtraValue] = dataclasses.field(default_factory=dict)

    def am_arguments(self) -> list[str]:
        args: list[str] = []
        if self.action:
            args += ["-a", self.action]
        for category in self.categories:
            args += ["-c", category]
        if self.data:
            args += ["-d", self.data]
        if self.component:
            args += ["-n", self.component]
        elif self.package:
            args += ["-p", self.package]
        for key, value in self.extras.items():
            args += [_extra_flag(value), key, _extra_text(value)]
        return args


def _extra_flag(value: ExtraValue) -> str:
    if isinstance(value, bool):
        return "--ez"
    if isinstance(value, int):
        return "--ei" if -(2**31) <= value < 2**31 else "--el"
    if isinstance(value, float):
        return "--ef"
    return "--es"


def _extra_text(value: ExtraValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclasses.dataclass(frozen=True)
class BroadcastResult:
    code: int
    data: str | None


class AppPackage:
    """One package on one device: the package manager and activity manager verbs."""

    def __init__(self, device: AndroidDevice, package: str) -> None:
        if not re.fullmatch(r"[A-Za-z][\w]*(\.[A-Za-z][\w]*)+", package):
            raise UsageError(f"invalid Android package name {package!r}: expected a dotted name "
                             "such as org.example.app")
        self.device = device
        self.package = package

    def __repr__(self) -> str:
        return f"AppPackage({self.package!r} on {self.device.serial})"

    # Install ----------------------------------------------------------------------------------
    def is_installed(self) -> bool:
        result = self.device.shell(["pm", "path", self.package], check=False)
        return result.exit_code == 0 and result.stdout.startswith("package:")

    def install(self, apk: Path, *, grant_runtime_permissions: bool = True, downgrade: bool = False) -> None:
        """Push the APK and install it (``pm install -r -t [-g] [-d]``), replacing any older one."""
        if not apk.is_file():
            raise UsageError(f"APK not found: {apk}; pass an existing file with --apk")
        staged = f"{STAGING_DIR}/harness-{self.package}.apk"
        log.info("installing %s on %s", apk.name, self.device.serial)
        self.device.push(apk, staged)
        flags = ["-r", "-t"] + (["-g"] if grant_runtime_permissions else []) + (["-d"] if downgrade else [])
        try:
            result = self.device.shell(["pm", "install", *flags, staged], check=False, timeout=300)
        finally:
            self.device.shell(["rm", "-f", staged], check=False)
        if "Success" not in result.stdout:
            match = _FAILURE.search(result.output)
            reason = match.group(1) if match else "UNKNOWN"
            raise ApkInstallError(
                f"installing {apk.name} on device {self.device.serial} failed: {reason} "
                f"({_one_line(result.output)}); check that the APK is valid and built for this "
                "device's ABI and Android version",
                reason=reason, output=result.output,
            )
        if not self.is_installed():
            raise ApkInstallError(f"pm reported success but {self.package} is not installed on "
                                  f"{self.device.serial}; does --apk contain this package?",
                                  reason="PACKAGE_MISMATCH", output=result.output)

    def uninstall(self, *, keep_data: bool = False) -> bool:
        """Uninstall the package; return False when it was not installed."""
        args = ["pm", "uninstall"] + (["-k"] if keep_data else []) + [self.package]
        result = self.device.shell(args, check=False, timeout=120)
        if "Success" in result.stdout:
            return True
        if not self.is_installed():
            return False
        raise AdbCommandError(f"uninstalling {self.package} from {self.device.serial} failed: "
                              f"{_one_line(result.output)}", exit_code=result.exit_code, output=result.output)

    # Permissions --------------------------------------------------------------------------------
    def grant(self, permission: str) -> None:
        self._permission("grant", permission)

    def revoke(self, permission: str) -> None:
        self._permission("revoke", permission)

    def _permission(self, verb: str, permission: str) -> None:
        result = self.device.shell(["pm", verb, self.package, permission], check=False)
        if result.exit_code != 0:
            raise AdbCommandError(
                f"`pm {verb} {self.package} {permission}` failed on {self.device.serial}: "
                f"{_exception_line(result.output)}; only runtime permissions the app requests can be changed",
                exit_code=result.exit_code, output=result.output,
            )

    def granted_permissions(self) -> set[str]:
        """Return the runtime permissions currently granted (from ``dumpsys package``)."""
        text = self.device.shell(["dumpsys", "package", self.package]).stdout
        return set(re.findall(r"^\s+([\w.]+): granted=true", text, re.MULTILINE))

    # Data and lifecycle ---------------------------------------------------------------------------
    def clear_data(self) -> None:
        """Erase the app's data and stop it (``pm clear``), as "Clear storage" in Settings does."""
        result = self.device.shell(["pm", "clear", self.package], check=False)
        if "Success" not in result.stdout:
            raise AdbCommandError(f"`pm clear {self.package}` failed on {self.device.serial}: "
                                  f"{_one_line(result.output)}", exit_code=result.exit_code,
                                  output=result.output)

    def launcher_activity(self) -> str:
        """Resolve the launcher activity (``cmd package resolve-activity --brief``)."""
        result = self.device.shell(["cmd", "package", "resolve-activity", "--brief", "-c",
                                    "android.intent.category.LAUNCHER", self.package], check=False)
        last = result.stdout.strip().splitlines()[-1:] or [""]
        if "/" not in last[0]:
            raise AdbCommandError(f"{self.package} has no launcher activity on {self.device.serial}; "
                                  "set `activity` in the app profile", output=result.output)
        return last[0].split("/", 1)[1]

    def start(self, activity: str | None = None, extras: Mapping[str, ExtraValue] | None = None,
              *, action: str | None = None, stop_first: bool = False) -> ShellResult:
        """Start an activity and wait until it is drawn (``am start -W``)."""
        activity = activity or self.launcher_activity()
        intent = Intent(action=action, component=f"{self.package}/{activity}", extras=dict(extras or {}))
        args = ["am", "start", "-W"] + (["-S"] if stop_first else []) + intent.am_arguments()
        result = self.device.shell(args, check=False, timeout=120, idempotent=False)
        if result.exit_code != 0 or _has_error(result.output):
            raise AdbCommandError(f"starting {self.package}/{activity} failed on {self.device.serial}: "
                                  f"{_error_line(result.output)}", exit_code=result.exit_code,
                                  output=result.output)
        return result

    def stop(self) -> None:
        """Force-stop the app; safe when it is not running."""
        self.device.shell(["am", "force-stop", self.package])

    def pid(self) -> int | None:
        result = self.device.shell(["pidof", self.package], check=False)
        first = result.stdout.split()
        return int(first[0]) if result.exit_code == 0 and first and first[0].isdigit() else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def broadcast(self, action: str, extras: Mapping[str, ExtraValue] | None = None,
                  *, receiver: str | None = None) -> BroadcastResult:
        """Send a broadcast to this package (a debug intent); return the receiver's result."""
        intent = Intent(action=action, component=f"{self.package}/{receiver}" if receiver else None,
                        package=None if receiver else self.package, extras=dict(extras or {}))
        result = self.device.shell(["am", "broadcast", *intent.am_arguments()], check=False,
                                   timeout=120, idempotent=False)
        match = re.search(r'Broadcast completed: result=(-?\d+)(?:, data="(.*)")?', result.stdout)
        if result.exit_code != 0 or match is None:
            raise AdbCommandError(f"broadcast {action} to {self.package} failed on {self.device.serial}: "
                                  f"{_error_line(result.output)}", exit_code=result.exit_code,
                                  output=result.output)
        return BroadcastResult(int(match.group(1)), match.group(2))


def _has_error(output: str) -> bool:
    return any(line.startswith(("Error", "Exception", "Security exception")) for line in output.splitlines())


def _error_line(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("Error", "Exception", "Security exception", "java.")):
            return line.strip()
    return _one_line(output)


def _exception_line(output: str) -> str:
    for line in output.splitlines():
        if "Exception:" in line:
            return line.split("Exception:", 1)[1].strip()
    return _one_line(output)


def _one_line(output: str, limit: int = 200) -> str:
    text = " ".join(line.strip() for line in output.splitlines() if line.strip()) or "no output"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def apply_permissions(app: AppPackage, grant: Sequence[str] = (), revoke: Sequence[str] = ()) -> None:
    """Grant, then revoke, the listed runtime permissions (a profile's permission section)."""
    for permission in grant:
        app.grant(permission)
    for permission in revoke:
        app.revoke(permission)
