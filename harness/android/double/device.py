"""The simulated device behind the adb double: its state and the events that change it.

The device keeps what the shell commands act on: system properties, the settings provider,
the wall clock and time zone, installed packages and their running app runtimes, and the log
buffer. It also keeps the ``adb reverse`` rules, the listening device sockets (the
uiautomator2 server) and the file system. Shell commands (``harness.android.double.commands``) read and change this state;
the adb server (``harness.android.double.server``) exposes it over the host protocol.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from harness.android.double.apk import ApkManifest
from harness.android.double.apps import RUNTIMES, AppRuntime, InertApp, launcher_screen
from harness.android.double.faults import FaultPlan
from harness.android.double.filesystem import DeviceFileSystem
from harness.android.double.logbuffer import LogBuffer
from harness.android.double.ui_model import Screen

log = logging.getLogger(__name__)

FIRST_APP_UID = 10_100
# A socket handler serves one accepted device-side connection until it closes.
SocketHandler = Callable[[socket.socket, threading.Event], None]


@dataclasses.dataclass
class InstalledPackage:
    """A package as the package manager keeps it."""

    manifest: ApkManifest
    apk_path: str
    uid: int
    install_time_ms: int
    granted: set[str] = dataclasses.field(default_factory=set)

    @property
    def name(self) -> str:
        return self.manifest.package

    @property
    def data_dir(self) -> str:
        return f"/data/data/{self.manifest.package}"


@dataclasses.dataclass(eq=False)
class ActiveConnection:
    """An open adb stream to this device; going offline cuts every one of them."""

    sock: socket.socket
    closed: threading.Event = dataclasses.field(default_factory=threading.Event)

    def cut(self) -> None:
        self.closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def default_properties(serial: str, emulator: bool) -> dict[str, str]:
    return {
        "ro.serialno": serial,
        "ro.product.model": "sdk_gphone64_x86_64" if emulator else "Pixel 7",
        "ro.product.name": "sdk_gphone64_x86_64" if emulator else "panther",
        "ro.product.device": "emu64x" if emulator else "panther",
        "ro.product.brand": "google",
        "ro.product.cpu.abi": "x86_64" if emulator else "arm64-v8a",
        "ro.build.version.sdk": "34",
        "ro.build.version.release": "14",
        "ro.build.type": "userdebug" if emulator else "user",
        "ro.debuggable": "1" if emulator else "0",
        "ro.kernel.qemu": "1" if emulator else "0",
        "sys.boot_completed": "1",
        "persist.sys.timezone": "UTC",
    }


def default_settings() -> dict[str, dict[str, str]]:
    return {
        "global": {"auto_time": "1", "auto_time_zone": "1", "airplane_mode_on": "0",
                   "wifi_on": "1", "mobile_data": "1", "adb_enabled": "1"},
        "system": {"screen_brightness": "128", "time_12_24": "24"},
        "secure": {"android_id": "5a1d0c3e9f8b7a61"},
    }


class SimulatedDevice:
    """One phone or emulator, as the adb double presents it."""

    def __init__(self, serial: str, root: Path, *, emulator: bool = True,
                 rooted: bool | None = None) -> None:
        self.serial = serial
        self.emulator = emulator
        # Emulator images without Google Play ship `su`; production phones do not.
        self.rooted = emulator if rooted is None else rooted
        self.adbd_root = False
        self.fs = DeviceFileSystem(root)
        self.properties = default_properties(serial, emulator)
        self.settings = default_settings()
        self.logbuffer = LogBuffer()
        self.faults = FaultPlan()
        self.packages: dict[str, InstalledPackage] = {}
        self.runtimes: dict[str, AppRuntime] = {}
        self.foreground: str | None = None
        self.reverses: dict[str, str] = {}
        self.listeners: dict[str, SocketHandler] = {}
        self.clipboard = ""
        self.radio = {"airplane": False, "wifi": True, "data": True}
        self.focused_field: str | None = None  # resource id of the text field with focus
        self.ui_servers: dict[int, Any] = {}  # port -> running uiautomator2 server
        # Per-package options merged over the APK's runtime asset (the hosted app's defects).
        self.app_options: dict[str, dict[str, Any]] = {}
        self._clock_offset_ms = 0
        self._state = "device"
        self._state_changed = threading.Condition()
        self._connections: set[ActiveConnection] = set()
        self._lock = threading.RLock()
        self._next_uid = FIRST_APP_UID
        self.log("init", "boot completed", pid=1)

    def __repr__(self) -> str:
        return f"SimulatedDevice(serial={self.serial!r}, state={self.state!r})"

    # State and connections ------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    @property
    def lock(self) -> threading.RLock:
        """Serializes changes to packages, settings and the clock."""
        return self._lock

    def go_offline(self, duration_s: float | None = None) -> None:
        """Drop off adb: cut every open stream; come back after ``duration_s`` if given."""
        with self._state_changed:
            self._state = "offline"
            connections = list(self._connections)
            self._state_changed.notify_all()
        log.info("device %s offline (%s)", self.serial,
                 f"back in {duration_s:g} s" if duration_s is not None else "until told")
        for connection in connections:
            connection.cut()
        if duration_s is not None:
            timer = threading.Timer(duration_s, self.come_online)
            timer.daemon = True
            timer.start()

    def come_online(self) -> None:
        with self._state_changed:
            self._state = "device"
            self._state_changed.notify_all()
        log.info("device %s online", self.serial)

    def wait_for_state(self, state: str, timeout: float | None) -> bool:
        with self._state_changed:
            return self._state_changed.wait_for(lambda: self._state == state, timeout)

    def register(self, connection: ActiveConnection) -> None:
        with self._state_changed:
            self._connections.add(connection)

    def unregister(self, connection: ActiveConnection) -> None:
        with self._state_changed:
            self._connections.discard(connection)

    # Clock ------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return int(time.time() * 1000) + self._clock_offset_ms

    @property
    def timezone(self) -> str:
        return self.properties.get("persist.sys.timezone") or "UTC"

    def set_time_ms(self, epoch_ms: int) -> None:
        """Set the wall clock, as AlarmManager.setTime does, then tell the apps."""
        with self._lock:
            self._clock_offset_ms = epoch_ms - int(time.time() * 1000)
        self.log("AlarmManager", f"Setting time of day to sec={epoch_ms // 1000}", pid=600)
        if self.settings["global"].get("auto_time") == "1":
            # Network time wins while automatic time is on: the change does not stick.
            with self._lock:
                self._clock_offset_ms = 0
            self.log("NetworkTimeUpdateService", "auto_time on: clock reset to network time", pid=600)
        self._notify_apps(lambda runtime: runtime.on_clock_changed())

    def set_timezone(self, zone: str) -> None:
        """Set persist.sys.timezone; raise ValueError for a name the tz database lacks."""
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"Invalid time zone: {zone}") from None
        with self._lock:
            self.properties["persist.sys.timezone"] = zone
        self.log("AlarmManager", f"Setting time zone to {zone}", pid=600)
        if self.settings["global"].get("auto_time_zone") == "1":
            self.log("TimeZoneDetector", "auto_time_zone on: zone kept by the detector", pid=600)
        self._notify_apps(lambda runtime: runtime.on_clock_changed())

    # Network ------------------------------------------------------------------------------
    def set_radio(self, *, airplane: bool | None = None, wifi: bool | None = None,
                  data: bool | None = None) -> None:
        """Switch radios as ``cmd connectivity``/``svc`` do, mirroring the global settings.

        Writing the settings alone (``settings put global airplane_mode_on 1``) changes no
        radio, as on Android 7 and later where the matching broadcast is protected.
        """
        with self._lock:
            if airplane is not None:
                self.radio["airplane"] = airplane
                self.settings["global"]["airplane_mode_on"] = "1" if airplane else "0"
            if wifi is not None:
                self.radio["wifi"] = wifi
                self.settings["global"]["wifi_on"] = "1" if wifi else "0"
            if data is not None:
                self.radio["data"] = data
                self.settings["global"]["mobile_data"] = "1" if data else "0"
        self.log("ConnectivityService", f"network {'up' if self.network_up() else 'down'} "
                 f"wifi={'on' if self.wifi_up() else 'off'}", pid=600)
        self._notify_apps(lambda runtime: runtime.on_network_changed())

    def network_up(self) -> bool:
        """Return whether an app has a network: Wi-Fi or mobile data, with airplane mode off."""
        return not self.radio["airplane"] and (self.radio["wifi"] or self.radio["data"])

    def wifi_up(self) -> bool:
        return not self.radio["airplane"] and self.radio["wifi"]

    # Packages and apps ------------------------------------------------------------------
    def allocate_uid(self) -> int:
        with self._lock:
            uid = self._next_uid
            self._next_uid += 1
            return uid

    def runtime(self, package: str) -> AppRuntime:
        """Return the app runtime of an installed package, creating it on first use."""
        with self._lock:
            if package not in self.runtimes:
                options = {**self.packages[package].manifest.runtime, **self.app_options.get(package, {})}
                factory = RUNTIMES.get(str(options.get("kind", "inert")), InertApp)
                self.runtimes[package] = factory(self, package, options)
            return self.runtimes[package]

    def pid_of(self, package: str) -> int | None:
        runtime = self.runtimes.get(package)
        return runtime.pid if runtime else None

    def foreground_screen(self) -> Screen:
        with self._lock:
            package = self.foreground
            runtime = self.runtimes.get(package) if package else None
        if runtime is not None and runtime.running:
            return runtime.screen()
        return launcher_screen()

    def _notify_apps(self, event: Callable[[AppRuntime], None]) -> None:
        for runtime in list(self.runtimes.values()):
            if runtime.running:
                event(runtime)

    # Log ----------------------------------------------------------------------------------
    def log(self, tag: str, message: str, *, level: str = "I", pid: int = 1) -> None:
        self.logbuffer.append(self.now_ms(), pid, level, tag, message)

    # Device sockets ---------------------------------------------------------------------
    def listen(self, endpoint: str, handler: SocketHandler) -> None:
        """Accept connections on a device socket such as ``tcp:9008``."""
        with self._lock:
            self.listeners[endpoint] = handler

    def unlisten(self, endpoint: str) -> None:
        with self._lock:
            self.listeners.pop(endpoint, None)

    def crash_ui_server(self) -> bool:
        """Crash every running uiautomator2 server; return whether one was running."""
        servers = list(self.ui_servers.values())
        for server in servers:
            server.crash()
        return bool(servers)
