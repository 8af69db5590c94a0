"""Airplane mode, Wi-Fi and mobile data switches with restore, on the adb double."""

from __future__ import annotations

from android_support import adb_double, device, shell_requests, sim  # noqa: F401 (fixtures)

from harness.android.network import DeviceNetwork, NetworkState


def test_switches_change_radios_and_settings(device, sim, adb_double) -> None:
    network = DeviceNetwork(device)
    assert network.state() == NetworkState(airplane=False, wifi=True, data=True)
    network.set_wifi(False)
    assert not sim.wifi_up()
    assert sim.network_up()
    network.set_airplane_mode(True)
    assert not sim.network_up()
    network.set_mobile_data(False)
    assert network.state() == NetworkState(airplane=True, wifi=False, data=False)
    commands = shell_requests(adb_double)
    assert "svc wifi disable" in commands
    assert "cmd connectivity airplane-mode enable" in commands
    assert "svc data disable" in commands


def test_restore_returns_to_saved_state(device, sim) -> None:
    network = DeviceNetwork(device)
    network.set_airplane_mode(True)
    network.set_wifi(False)
    network.restore()
    assert network.state() == NetworkState(airplane=False, wifi=True, data=True)
    assert sim.network_up()
    assert sim.wifi_up()


def test_settings_alone_switch_no_radio(device, sim) -> None:
    device.shell(["settings", "put", "global", "airplane_mode_on", "1"])
    assert sim.network_up()
