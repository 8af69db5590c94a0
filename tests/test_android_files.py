"""Listing and pulling app files through run-as, su or a root adbd, on the adb double."""

from __future__ import annotations

import pytest
from android_support import PACKAGE, SERIAL, adb_double, device, make_apk, shell_requests, sim  # noqa: F401

from harness.android.device import connect
from harness.android.errors import AppDataAccessError, DeviceOfflineError
from harness.android.files import ACCESS_ROOT_ADBD, ACCESS_RUN_AS, ACCESS_SU, AppFiles
from harness.android.packages import AppPackage

DATABASE = bytes(range(256)) * 64 + b"\r\n\x00tail"


def plant_files(sim) -> None:
    data = sim.fs.host_path(f"/data/data/{PACKAGE}")
    (data / "databases").mkdir(parents=True, exist_ok=True)
    (data / "databases" / "messages.db").write_bytes(DATABASE)
    (data / "files").mkdir(exist_ok=True)
    (data / "files" / "keystore.json").write_text('{"sealed": "..."}')


def test_run_as_on_debuggable_build(device, sim, adb_double, tmp_path) -> None:
    AppPackage(device, PACKAGE).install(make_apk(tmp_path, debuggable=True))
    plant_files(sim)
    files = AppFiles(device, PACKAGE)
    assert files.access() == ACCESS_RUN_AS
    assert files.list() == ["databases/messages.db", "files/keystore.json"]
    assert files.read("databases/messages.db") == DATABASE
    assert f"run-as {PACKAGE} cat databases/messages.db" in shell_requests(adb_double)
    pulled = files.pull(tmp_path / "snapshot")
    assert sorted(path.relative_to(tmp_path / "snapshot").as_posix() for path in pulled) == files.list()
    assert (tmp_path / "snapshot" / "databases" / "messages.db").read_bytes() == DATABASE


def test_su_on_emulator_for_release_build(device, sim, tmp_path) -> None:
    AppPackage(device, PACKAGE).install(make_apk(tmp_path, debuggable=False))
    plant_files(sim)
    files = AppFiles(device, PACKAGE)
    assert files.access() == ACCESS_SU
    assert files.read("files/keystore.json") == b'{"sealed": "..."}'
    assert files.list("files") == ["files/keystore.json"]


def test_root_adbd(device, sim, tmp_path) -> None:
    AppPackage(device, PACKAGE).install(make_apk(tmp_path, debuggable=False))
    plant_files(sim)
    sim.rooted = False
    sim.adbd_root = True
    assert AppFiles(device, PACKAGE).access() == ACCESS_ROOT_ADBD


def test_phone_without_root_and_release_build(adb_double, tmp_path) -> None:
    adb_double.add_device("R58M123ABC", emulator=False)
    phone = connect(adb_double.address, "R58M123ABC")
    AppPackage(phone, PACKAGE).install(make_apk(tmp_path, debuggable=False))
    with pytest.raises(AppDataAccessError, match="run-as failed .*package not debuggable.*use a debuggable build"):
        AppFiles(phone, PACKAGE).list()


def test_paths_outside_the_data_directory_are_refused(device, sim, tmp_path) -> None:
    AppPackage(device, PACKAGE).install(make_apk(tmp_path))
    files = AppFiles(device, PACKAGE)
    with pytest.raises(AppDataAccessError, match="outside the data directory"):
        files.read("../other.app/secret")


def test_failed_pull_leaves_no_partial_snapshot(adb_double, device, sim, tmp_path) -> None:
    AppPackage(device, PACKAGE).install(make_apk(tmp_path))
    plant_files(sim)
    sim.faults.offline_on_pattern = "cat files/keystore.json"
    sim.faults.offline_duration_s = 30
    files = AppFiles(connect(adb_double.address, SERIAL, reconnect_timeout=0.5), PACKAGE)
    with pytest.raises(DeviceOfflineError):
        files.pull(tmp_path / "snapshot")
    assert not (tmp_path / "snapshot").exists()
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".pull-")] == []
