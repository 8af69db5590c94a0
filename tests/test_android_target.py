"""The Android target on the adb double hosting the reference app, against a real stub server.

Everything goes through real sockets: adbutils and uiautomator2 to the double, the hosted app
to the stub through the device's adb reverse rule.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from android_support import SERIAL

from harness.android.double import AdbDouble
from harness.android.double.reference_host import REFERENCE_PACKAGE, build_reference_apk, install_reference_app
from harness.android.errors import DeviceOfflineError
from harness.device_session import StubHandle, new_account, stub_endpoints
from harness.errors import InfrastructureError, UsageError
from harness.scenario import load_scenario
from harness.stub_process import StubProcess
from harness.targets.android import AndroidTarget

pytestmark = pytest.mark.oracle

SCENARIO = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios" / "daily-life.yaml"


@pytest.fixture(scope="module")
def stub():
    with StubProcess.start() as process:
        yield StubHandle(process.url, process.admin_url, process.admin)


@pytest.fixture
def double():
    with AdbDouble() as adb_double:
        device = adb_double.add_device(SERIAL)
        install_reference_app(device)
        yield adb_double


def open_target(double: AdbDouble, stub: StubHandle, work_dir: Path, **options) -> AndroidTarget:
    target = AndroidTarget(serial=SERIAL, adb_server=double.address, work_dir=work_dir, reconnect_timeout=5, **options)
    target.install()
    target.start()
    target.set_clock(int(stub.admin.now() * 1000), "UTC")
    target.point_at(stub_endpoints(stub))
    return target


def test_backup_and_restore_through_the_ui(double, stub, tmp_path) -> None:
    target = open_target(double, stub, tmp_path)
    try:
        account = new_account(stub, "free")
        target.register_account(account)
        target.load_scenario(load_scenario(SCENARIO))
        before = target.visible_messages()
        key = target.enable_backups("free")
        assert len(key.replace(" ", "")) == 64
        result = target.back_up_now()
        assert result.ok
        assert result.archive_size > 0
        status = target.backup_status()
        assert status.enabled
        assert status.tier == "free"
        assert status.last_backup_ms == result.backup_time_ms

        target.wipe()
        target.start()
        target.register_account(account)
        assert target.visible_messages() == []
        wrong = target.restore("not a key")
        assert not wrong.ok
        assert wrong.error_kind == "invalid-key"
        restored = target.restore(key.lower())
        assert restored.ok
        after = target.visible_messages()
        # View-once media and short timers are left out of backups, so compare what survives.
        kept = {(message.chat, message.sent_at_ms, message.text) for message in before if not message.view_once}
        assert {(message.chat, message.sent_at_ms, message.text) for message in after if not message.view_once} == kept
        snapshot = target.snapshot_files(tmp_path / "snapshot")
        assert (snapshot / "messages.db").is_file()
        assert target.message_store_paths() == ["messages.db", "messages.db-journal", "attachments"]
    finally:
        target.close()


def test_close_restores_the_device(double, stub, tmp_path) -> None:
    device = double.device(SERIAL)
    target = open_target(double, stub, tmp_path)
    assert device.reverses
    assert device.settings["global"]["auto_time"] == "0"
    target.close()
    assert device.reverses == {}
    assert device.settings["global"]["auto_time"] == "1"
    assert not device.ui_servers
    assert device.pid_of(REFERENCE_PACKAGE) is None


def test_missing_app_needs_an_apk(stub, tmp_path) -> None:
    with AdbDouble() as bare:
        bare.add_device(SERIAL)
        target = AndroidTarget(serial=SERIAL, adb_server=bare.address, work_dir=tmp_path)
        with pytest.raises(UsageError, match=f"{REFERENCE_PACKAGE} is not installed on {SERIAL}; pass --apk"):
            target.install()
        target.close()


def test_install_from_apk(stub, tmp_path) -> None:
    apk = build_reference_apk(tmp_path / "reference.apk")
    with AdbDouble() as bare:
        bare.add_device(SERIAL)
        target = open_target(bare, stub, tmp_path / "work", apk=apk)
        try:
            target.register_account(new_account(stub, "free"))
            assert target.backup_status().enabled is False
        finally:
            target.close()


def test_ui_server_crash_mid_action_recovers(double, stub, tmp_path) -> None:
    target = open_target(double, stub, tmp_path)
    try:
        target.register_account(new_account(stub, "free"))
        target.enable_backups("free")
        double.device(SERIAL).faults.ui_crash_on_method = "objInfo"
        assert target.back_up_now().ok
        assert target.ui.restarts == 1
    finally:
        target.close()


def test_short_disconnect_is_retried(double, stub, tmp_path) -> None:
    target = open_target(double, stub, tmp_path)
    try:
        target.register_account(new_account(stub, "free"))
        faults = double.device(SERIAL).faults
        faults.offline_on_pattern = r"^settings get global auto_time$"
        faults.offline_duration_s = 0.5
        target.set_clock(int(stub.admin.now() * 1000))
        assert target.logcat.is_alive
    finally:
        target.close()


def test_long_disconnect_is_an_infrastructure_error(double, stub, tmp_path) -> None:
    target = open_target(double, stub, tmp_path)
    try:
        faults = double.device(SERIAL).faults
        faults.offline_on_pattern = r"^am start"
        faults.offline_duration_s = 30
        with pytest.raises(DeviceOfflineError) as caught:
            target.backup_status()
        assert isinstance(caught.value, InfrastructureError)
    finally:
        double.device(SERIAL).come_online()
        target.close()


def test_leaked_key_stays_out_of_artifacts(stub, tmp_path) -> None:
    with AdbDouble() as leaky:
        install_reference_app(leaky.add_device(SERIAL), defects=["key-to-log"])
        target = open_target(leaky, stub, tmp_path)
        try:
            target.register_account(new_account(stub, "free"))
            key = target.enable_backups("free")
            compact = key.replace(" ", "").lower()
            assert any(compact in line.text.replace(" ", "").lower() for line in target.read_log())
            target.capture_artifacts(tmp_path / "artifacts")
            for path in (tmp_path / "artifacts").iterdir():
                if path.suffix in (".txt", ".xml"):
                    text = path.read_text().replace(" ", "").lower()
                    assert compact not in text, f"{path.name} contains the recovery key"
        finally:
            target.close()
