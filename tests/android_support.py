"""Test helpers for the Android device layer: the adb double, a connected device, test APKs.

Tests import the fixtures they use from here. Every device operation goes through real
sockets to :class:`AdbDouble` and through the real adbutils and uiautomator2 clients.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.android.device import AndroidDevice, connect
from harness.android.double import AdbDouble, SimulatedDevice
from harness.android.double.apk import ApkManifest, build_double_apk
from harness.android.double.apps import RUNTIMES, InertApp
from harness.android.double.ui_model import Screen, UiNode

SERIAL = "emulator-5554"
PACKAGE = "org.example.messenger"
POST_NOTIFICATIONS = "android.permission.POST_NOTIFICATIONS"
CAMERA = "android.permission.CAMERA"
INTERNET = "android.permission.INTERNET"


class SecureScreenApp(InertApp):
    """An app whose window sets FLAG_SECURE, as a messenger's key screen does."""

    def screen(self) -> Screen:
        return Screen(self.package, ".KeyActivity", UiNode(
            class_name="android.widget.FrameLayout",
            children=[UiNode(class_name="android.widget.TextView", text="Recovery key",
                             resource_id=f"{self.package}:id/title")]), secure=True)


class KeyScreenApp(InertApp):
    """An app that shows a recovery key on screen (text set by the test)."""

    shown_text = ""

    def screen(self) -> Screen:
        return Screen(self.package, ".KeyActivity", UiNode(
            class_name="android.widget.FrameLayout",
            children=[UiNode(class_name="android.widget.TextView", text=self.shown_text,
                             resource_id=f"{self.package}:id/recovery_key")]))


RUNTIMES["test-secure"] = SecureScreenApp
RUNTIMES["test-key-screen"] = KeyScreenApp


def make_apk(directory: Path, *, package: str = PACKAGE, debuggable: bool = True, version_code: int = 3,
             kind: str = "inert", permissions: tuple[str, ...] = (INTERNET, POST_NOTIFICATIONS, CAMERA)) -> Path:
    manifest = ApkManifest(package=package, version_code=version_code, version_name=f"1.{version_code}",
                           debuggable=debuggable, permissions=permissions,
                           launcher_activity=".MainActivity", runtime={"kind": kind})
    return build_double_apk(directory / f"{package}-{version_code}.apk", manifest)


@pytest.fixture
def adb_double():
    with AdbDouble() as double:
        double.add_device(SERIAL)
        yield double


@pytest.fixture
def sim(adb_double: AdbDouble) -> SimulatedDevice:
    return adb_double.device(SERIAL)


@pytest.fixture
def device(adb_double: AdbDouble) -> AndroidDevice:
    return connect(adb_double.address, SERIAL, command_timeout=5, reconnect_timeout=3)


def shell_requests(double: AdbDouble, serial: str = SERIAL) -> list[str]:
    """The shell commands a client sent to the device, without the service prefix."""
    return [request.split(":", 1)[1] for request in double.requests_to(serial)
            if request.startswith(("shell:", "shell,v2:", "exec:"))]
