"""Intents and the app runtimes the simulated device starts for installed packages.

An installed package gets an :class:`AppRuntime`: by default an :class:`InertApp`, which only
has a process id and one screen. The APK's runtime asset can name another runtime (the
reference app host registers one), which then receives the device's intents, clock changes
and network changes exactly as an app on a phone would.
"""

from __future__ import annotations

import abc
import dataclasses
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.android.double.ui_model import Screen, UiNode

if TYPE_CHECKING:
    from harness.android.double.device import SimulatedDevice

_pids = itertools.count(4100)


def next_pid() -> int:
    return next(_pids)


@dataclasses.dataclass
class IntentSpec:
    """An intent as ``am start``/``am broadcast`` build it from their arguments."""

    action: str | None = None
    component: str | None = None  # "package/activity" or "package/.Activity"
    package: str | None = None
    data: str | None = None
    categories: list[str] = dataclasses.field(default_factory=list)
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def target_package(self) -> str | None:
        if self.component:
            return self.component.split("/", 1)[0]
        return self.package

    def describe(self) -> str:
        parts = []
        if self.action:
            parts.append(f"act={self.action}")
        if self.categories:
            parts.append("cat=[" + ",".join(self.categories) + "]")
        if self.data:
            parts.append(f"dat={self.data}")
        if self.package and not self.component:
            parts.append(f"pkg={self.package}")
        if self.component:
            parts.append(f"cmp={self.component}")
        if self.extras:
            parts.append("(has extras)")
        return "Intent { " + " ".join(parts) + " }"


class AppRuntime(abc.ABC):
    """The process and behaviour of one installed package on the simulated device."""

    def __init__(self, device: SimulatedDevice, package: str, options: dict[str, Any]) -> None:
        self.device = device
        self.package = package
        self.options = options
        self.pid: int | None = None

    @property
    def running(self) -> bool:
        return self.pid is not None

    @abc.abstractmethod
    def start(self, intent: IntentSpec) -> None:
        """Start the process (if needed) and deliver a launch intent."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Kill the process (``am force-stop``). Safe when it is not running."""

    def broadcast(self, intent: IntentSpec) -> tuple[int, str | None]:
        """Deliver a broadcast; return the result code and result data."""
        return 0, None

    def screen(self) -> Screen:
        """Return what the app shows while it is in the foreground."""
        label = self.package.rsplit(".", 1)[-1]
        return Screen(self.package, ".MainActivity", UiNode(
            class_name="android.widget.FrameLayout",
            children=[UiNode(class_name="android.widget.TextView", text=label,
                             resource_id=f"{self.package}:id/title")]))

    def on_back(self) -> bool:
        """Handle the back key; return False to leave the app (it goes to the background)."""
        return False

    def on_clock_changed(self) -> None:
        """Handle a change of the device clock or time zone (ACTION_TIME_CHANGED)."""

    def on_network_changed(self) -> None:
        """Handle a switch of airplane mode, Wi-Fi or mobile data (CONNECTIVITY_ACTION)."""

    def on_data_cleared(self) -> None:
        """Handle ``pm clear``, which removed the app's data (the process was killed first)."""

    def on_uninstalled(self) -> None:
        self.stop()


class InertApp(AppRuntime):
    """A package with no behaviour: a process id and a title screen."""

    def start(self, intent: IntentSpec) -> None:
        if self.pid is None:
            self.pid = next_pid()
            self.device.log("ActivityManager", f"Start proc {self.pid}:{self.package}", pid=600)

    def stop(self) -> None:
        if self.pid is not None:
            self.device.log("ActivityManager", f"Force stopping {self.package}", pid=600)
        self.pid = None


RuntimeFactory = Callable[["SimulatedDevice", str, dict[str, Any]], AppRuntime]

# Runtimes by the "kind" of an APK's runtime asset. The reference-app host adds itself here.
RUNTIMES: dict[str, RuntimeFactory] = {"inert": InertApp}


def launcher_screen() -> Screen:
    """Return the home screen, shown when no app is in the foreground."""
    return Screen("com.android.launcher3", ".Launcher", UiNode(
        class_name="android.widget.FrameLayout",
        children=[UiNode(class_name="android.widget.TextView", text="Home",
                         resource_id="com.android.launcher3:id/workspace")]))
