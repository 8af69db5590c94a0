"""Device selection, typed errors and the single reconnect-and-retry, against the adb double."""

from __future__ import annotations

import socket
import time

import pytest
from android_support import SERIAL, adb_double, device, shell_requests, sim  # noqa: F401 (fixtures)

from harness.android.device import AdbServerAddress, connect, select_serials
from harness.android.errors import (
    AdbCommandError, AdbServerUnavailableError, AdbTimeoutError, DeviceNotFoundError, DeviceOfflineError,
)
from harness.errors import DeviceError, InfrastructureError, UsageError


def test_select_serials_precedence() -> None:
    environ = {"ANDROID_SERIAL": "emulator-5556", "DEVICEFARM_DEVICE_UDID": "R58M"}
    assert select_serials(["a,b", "c", "a"], environ) == ["a", "b", "c"]
    assert select_serials([], environ) == ["emulator-5556"]
    assert select_serials(None, {"DEVICEFARM_DEVICE_UDID": "R58M"}) == ["R58M"]
    assert select_serials(None, {}) == []


def test_address_parsing() -> None:
    assert AdbServerAddress.parse("127.0.0.1:5037") == AdbServerAddress("127.0.0.1", 5037)
    assert AdbServerAddress.parse("6000") == AdbServerAddress("127.0.0.1", 6000)
    assert AdbServerAddress.from_environment({"ANDROID_ADB_SERVER_PORT": "5038"}).port == 5038
    with pytest.raises(UsageError, match="invalid adb server address 'host:port'"):
        AdbServerAddress.parse("host:port")


def test_connect_picks_the_only_device(adb_double) -> None:
    assert connect(adb_double.address).serial == SERIAL


def test_missing_serial_lists_attached_devices(adb_double) -> None:
    adb_double.add_device("R58M123ABC", emulator=False)
    adb_double.device("R58M123ABC").go_offline()
    with pytest.raises(DeviceNotFoundError) as caught:
        connect(adb_double.address, "emulator-9999")
    message = str(caught.value)
    assert "device emulator-9999 not found" in message
    assert f"{SERIAL} (device, sdk_gphone64_x86_64)" in message
    assert "R58M123ABC (offline" in message
    assert isinstance(caught.value, DeviceError)


def test_offline_serial_is_reported(adb_double, sim) -> None:
    sim.go_offline()
    with pytest.raises(DeviceOfflineError, match=f"device {SERIAL} is offline: reconnect"):
        connect(adb_double.address, SERIAL)


def test_several_devices_need_a_serial(adb_double) -> None:
    adb_double.add_device("emulator-5556")
    with pytest.raises(DeviceNotFoundError, match="several devices are online.*pass --serial"):
        connect(adb_double.address)


def test_no_server_is_reported_without_spawning_adb() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(AdbServerUnavailableError, match=f"no adb server answers at 127.0.0.1:{free_port}"):
        connect(f"127.0.0.1:{free_port}", SERIAL)
    assert time.monotonic() - started < 5


def test_shell_uses_v2_and_reports_exit_codes(device, adb_double) -> None:
    result = device.shell(["echo", "a b"])
    assert (result.exit_code, result.stdout) == (0, "a b\n")
    assert "shell,v2:echo 'a b'" in adb_double.requests_to(SERIAL)
    with pytest.raises(AdbCommandError, match=r"`ls /data/data/x` failed .* exit code 1: ls: /data/data/x: Permission denied") as caught:
        device.shell(["ls", "/data/data/x"])
    assert caught.value.exit_code == 1
    assert isinstance(caught.value, InfrastructureError)
    assert device.shell("exit_code_127", check=False).exit_code == 127


def test_read_output_is_binary_safe(device) -> None:
    payload = bytes(range(256)) * 8
    device.push(payload, "/data/local/tmp/blob")
    assert device.read_output(["cat", "/data/local/tmp/blob"]) == payload
    with pytest.raises(AdbCommandError, match="No such file"):
        device.read_output(["cat", "/data/local/tmp/none"])


def test_offline_mid_command_reconnects_once(device, sim, adb_double) -> None:
    sim.faults.offline_on_pattern = r"^getprop ro\.build"
    sim.faults.offline_duration_s = 0.5
    assert device.getprop("ro.build.version.sdk") == "34"
    assert shell_requests(adb_double).count("getprop ro.build.version.sdk") == 2
    assert any(request.startswith("host-serial:emulator-5554:wait-for-any-device")
               for _, request in adb_double.traffic)


def test_offline_beyond_reconnect_timeout_raises(sim, adb_double) -> None:
    device = connect(adb_double.address, SERIAL, command_timeout=5, reconnect_timeout=1)
    sim.faults.offline_on_pattern = r"^getprop"
    sim.faults.offline_duration_s = 30
    started = time.monotonic()
    with pytest.raises(DeviceOfflineError, match=f"device {SERIAL} did not come back online within 1 s"):
        device.getprop("ro.serialno")
    assert time.monotonic() - started < 4
    assert shell_requests(adb_double).count("getprop ro.serialno") == 1


def test_non_idempotent_command_is_not_repeated(device, sim, adb_double) -> None:
    sim.faults.offline_on_pattern = r"^am broadcast"
    sim.faults.offline_duration_s = 0.3
    with pytest.raises(DeviceOfflineError, match="went offline during `am broadcast"):
        device.shell(["am", "broadcast", "-a", "org.example.PING", "-p", "org.example"], idempotent=False)
    assert shell_requests(adb_double).count("am broadcast -a org.example.PING -p org.example") == 1


def test_slow_shell_times_out_after_one_retry(adb_double, sim) -> None:
    slow = connect(adb_double.address, SERIAL, command_timeout=0.5, reconnect_timeout=2)
    sim.faults.shell_delay_s = 2.0
    sim.faults.shell_delay_pattern = r"^getprop"
    started = time.monotonic()
    with pytest.raises(AdbTimeoutError, match=r"adb timed out after 0.5 s during `getprop ro.serialno`"):
        slow.getprop("ro.serialno")
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 3
    assert shell_requests(adb_double).count("getprop ro.serialno") == 2


def test_device_removed_is_offline_error(adb_double) -> None:
    device = connect(adb_double.address, SERIAL, command_timeout=5, reconnect_timeout=1)
    adb_double.remove_device(SERIAL)
    with pytest.raises(DeviceOfflineError, match=f"device {SERIAL} did not come back online"):
        device.shell("true")


def test_sync_helpers(device, tmp_path) -> None:
    source = tmp_path / "config.json"
    source.write_text('{"server": "http://127.0.0.1:8443"}')
    assert device.push(source, "/data/local/tmp/config.json") == source.stat().st_size
    assert device.read_file("/data/local/tmp/config.json") == source.read_bytes()
    assert device.stat("/data/local/tmp/config.json").size == source.stat().st_size
    assert "config.json" in [entry.path for entry in device.list_dir("/data/local/tmp")]
    assert device.pull("/data/local/tmp/config.json", tmp_path / "copy.json") == source.stat().st_size
