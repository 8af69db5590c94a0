"""A faithful double of the adb server and of a device behind it, for tests without an emulator.

:class:`AdbDouble` listens on a loopback port and speaks the adb host protocol, so adbutils and
uiautomator2 talk to it exactly as to ``adb`` on port 5037. Each :class:`SimulatedDevice`
runs the shell commands, sync requests, reverse rules and device sockets the harness uses.
"""

from harness.android.double.device import SimulatedDevice
from harness.android.double.server import AdbDouble, apply_fault

__all__ = ["AdbDouble", "SimulatedDevice", "apply_fault"]
