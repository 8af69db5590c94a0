"""Device clock control: automatic time, set/advance, time zone, verification and restore."""

from __future__ import annotations

import time

import pytest
from android_support import SERIAL, adb_double, device, shell_requests, sim  # noqa: F401 (fixtures)

from harness.android.clock import DeviceClock
from harness.android.device import connect
from harness.android.errors import ClockError
from harness.errors import UsageError

JAN_2030_MS = 1_893_456_000_000


def test_set_turns_auto_time_off_and_verifies(device, sim, adb_double) -> None:
    clock = DeviceClock(device)
    clock.set(JAN_2030_MS, timezone="Europe/Berlin")
    assert sim.settings["global"]["auto_time"] == "0"
    assert sim.settings["global"]["auto_time_zone"] == "0"
    assert abs(sim.now_ms() - JAN_2030_MS) < 1_000
    assert sim.timezone == "Europe/Berlin"
    assert abs(clock.now_ms() - JAN_2030_MS) < 1_000
    commands = shell_requests(adb_double)
    assert f"su 0 cmd alarm set-time {JAN_2030_MS}" in commands
    assert "su 0 cmd alarm set-timezone Europe/Berlin" in commands


def test_advance_moves_forward(device, sim) -> None:
    clock = DeviceClock(device)
    clock.set(JAN_2030_MS)
    clock.advance(86_400_000)
    assert abs(sim.now_ms() - (JAN_2030_MS + 86_400_000)) < 1_000
    with pytest.raises(UsageError, match="negative"):
        clock.advance(-1)


def test_restore_puts_settings_back(device, sim) -> None:
    clock = DeviceClock(device)
    clock.set(JAN_2030_MS, timezone="Asia/Tokyo")
    clock.restore()
    assert sim.settings["global"]["auto_time"] == "1"
    assert sim.timezone == "UTC"
    assert abs(sim.now_ms() - time.time() * 1000) < 2_000
    clock.restore()  # a second restore is a no-op


def test_auto_time_reverting_the_clock_is_detected(device, sim) -> None:
    clock = DeviceClock(device)
    clock.take_control()
    sim.settings["global"]["auto_time"] = "1"  # something turned it back on behind our back
    clock._privileged_command(["cmd", "alarm", "set-time", str(JAN_2030_MS)], "set the clock")
    with pytest.raises(ClockError, match=r"clock reads \d+ ms, expected 1893456000000 ms \(off by"):
        clock.verify(JAN_2030_MS, time.monotonic())


def test_phone_without_root_cannot_set_the_clock(adb_double) -> None:
    adb_double.add_device("R58M123ABC", emulator=False)
    clock = DeviceClock(connect(adb_double.address, "R58M123ABC"))
    with pytest.raises(ClockError, match="needs root"):
        clock.set(JAN_2030_MS)


def test_root_adbd_sets_the_clock_directly(device, sim, adb_double) -> None:
    sim.adbd_root = True
    DeviceClock(device).set(JAN_2030_MS)
    assert f"cmd alarm set-time {JAN_2030_MS}" in shell_requests(adb_double)


def test_unknown_time_zone_is_a_usage_error(device) -> None:
    with pytest.raises(UsageError, match="unknown time zone 'Mars/Olympus'"):
        DeviceClock(device).set_timezone("Mars/Olympus")


def test_now_ms_has_millisecond_resolution(device, sim) -> None:
    DeviceClock(device).set(JAN_2030_MS + 123)
    assert abs(DeviceClock(device).now_ms() - (JAN_2030_MS + 123)) < 500
