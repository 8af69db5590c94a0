"""Install, permissions, clear, start and stop through ``pm``/``am`` on the adb double."""

from __future__ import annotations

import zipfile

import pytest
from android_support import (  # noqa: F401 (fixtures)
    CAMERA, INTERNET, PACKAGE, POST_NOTIFICATIONS, SERIAL, adb_double, device, make_apk, shell_requests, sim,
)

from harness.android.errors import AdbCommandError, ApkInstallError
from harness.android.packages import AppPackage, Intent
from harness.errors import UsageError


@pytest.fixture
def app(device) -> AppPackage:
    return AppPackage(device, PACKAGE)


def test_install_grants_runtime_permissions(app, adb_double, sim, tmp_path) -> None:
    assert not app.is_installed()
    app.install(make_apk(tmp_path))
    assert app.is_installed()
    commands = shell_requests(adb_double)
    assert f"pm install -r -t -g /data/local/tmp/harness-{PACKAGE}.apk" in commands
    assert f"rm -f /data/local/tmp/harness-{PACKAGE}.apk" in commands
    assert app.granted_permissions() >= {POST_NOTIFICATIONS, CAMERA}
    assert not sim.fs.exists(f"/data/local/tmp/harness-{PACKAGE}.apk")


def test_install_without_grant(app, tmp_path) -> None:
    app.install(make_apk(tmp_path), grant_runtime_permissions=False)
    assert POST_NOTIFICATIONS not in app.granted_permissions()


def test_install_failures_name_the_reason(app, tmp_path) -> None:
    broken = tmp_path / "broken.apk"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ApkInstallError, match="INSTALL_PARSE_FAILED_NOT_APK") as caught:
        app.install(broken)
    assert caught.value.reason == "INSTALL_PARSE_FAILED_NOT_APK"
    app.install(make_apk(tmp_path, version_code=5))
    with pytest.raises(ApkInstallError, match="INSTALL_FAILED_VERSION_DOWNGRADE"):
        app.install(make_apk(tmp_path, version_code=4))
    app.install(make_apk(tmp_path, version_code=4), downgrade=True)


def test_install_checks_the_package_name(device, tmp_path) -> None:
    other = AppPackage(device, "org.example.other")
    with pytest.raises(ApkInstallError, match="org.example.other is not installed"):
        other.install(make_apk(tmp_path))


def test_missing_apk_is_a_usage_error(app, tmp_path) -> None:
    with pytest.raises(UsageError, match="APK not found"):
        app.install(tmp_path / "nope.apk")
    with pytest.raises(UsageError, match="invalid Android package name"):
        AppPackage(app.device, "not a package")


def test_binary_manifest_is_read(app, tmp_path) -> None:
    """A real APK keeps its manifest as binary XML; pm install must read that form."""
    apk = tmp_path / "binary.apk"
    with zipfile.ZipFile(apk, "w") as archive:
        archive.writestr("AndroidManifest.xml", binary_manifest(PACKAGE, [CAMERA]))
    app.install(apk)
    assert app.is_installed()
    assert CAMERA in app.granted_permissions()


def test_permissions_grant_and_revoke(app, tmp_path) -> None:
    app.install(make_apk(tmp_path), grant_runtime_permissions=False)
    app.grant(CAMERA)
    assert CAMERA in app.granted_permissions()
    app.revoke(CAMERA)
    assert CAMERA not in app.granted_permissions()
    with pytest.raises(AdbCommandError, match="not a changeable permission type"):
        app.revoke(INTERNET)
    with pytest.raises(AdbCommandError, match="has not requested permission"):
        app.grant("android.permission.READ_SMS")


def test_start_stop_and_pid(app, adb_double, tmp_path) -> None:
    app.install(make_apk(tmp_path))
    assert app.pid() is None
    result = app.start(extras={"server_url": "http://127.0.0.1:8443", "debug": True, "port": 8443})
    assert "Status: ok" in result.stdout
    assert app.is_running()
    started = [line for line in shell_requests(adb_double) if line.startswith("am start")]
    assert started == [f"am start -W -n {PACKAGE}/{PACKAGE}.MainActivity --es server_url "
                       "http://127.0.0.1:8443 --ez debug true --ei port 8443"]
    app.stop()
    assert app.pid() is None


def test_start_unknown_activity_fails(app, tmp_path) -> None:
    app.install(make_apk(tmp_path))
    with pytest.raises(AdbCommandError, match="unable to resolve Intent"):
        app.start(".NoSuchActivity")


def test_clear_data_stops_app(app, sim, tmp_path) -> None:
    app.install(make_apk(tmp_path))
    app.start()
    data = sim.fs.host_path(f"/data/data/{PACKAGE}")
    (data / "databases").mkdir()
    (data / "databases" / "messages.db").write_bytes(b"db")
    app.clear_data()
    assert list(data.iterdir()) == []
    assert app.pid() is None


def test_uninstall(app, tmp_path) -> None:
    assert app.uninstall() is False
    app.install(make_apk(tmp_path))
    assert app.uninstall() is True
    assert not app.is_installed()


def test_broadcast_reports_result(app, tmp_path) -> None:
    app.install(make_apk(tmp_path))
    result = app.broadcast("org.example.messenger.DEBUG_PING", {"n": 1})
    assert (result.code, result.data) == (0, None)


def test_intent_arguments_keep_types() -> None:
    intent = Intent(action="A", package="p.q", extras={"s": "x y", "b": False, "big": 2**40, "f": 1.5})
    assert intent.am_arguments() == ["-a", "A", "-p", "p.q", "--es", "s", "x y", "--ez", "b", "false",
                                     "--el", "big", str(2**40), "--ef", "f", "1.5"]


def binary_manifest(package: str, permissions: list[str]) -> bytes:
    """Build a minimal binary-XML manifest (string pool, start/end elements) as aapt2 lays it out."""
    import struct

    strings = ["manifest", "package", package, "uses-permission", "name", *permissions, "application"]
    index = {value: position for position, value in enumerate(strings)}
    encoded = [struct.pack("<H", len(value)) + value.encode("utf-16-le") + b"\x00\x00" for value in strings]
    offsets, data = [], b""
    for item in encoded:
        offsets.append(len(data))
        data += item
    data += b"\x00" * (-len(data) % 4)
    pool_header = 28
    pool = struct.pack("<HHIIIIII", 0x0001, pool_header, pool_header + 4 * len(strings) + len(data),
                       len(strings), 0, 0, pool_header + 4 * len(strings), 0)
    pool += b"".join(struct.pack("<I", offset) for offset in offsets) + data

    def start(name: str, attributes: list[tuple[str, str]]) -> bytes:
        body = struct.pack("<IIHHHHHH", 0xFFFFFFFF, index[name], 20, 20, len(attributes), 0, 0, 0)
        for attr_name, value in attributes:
            body += struct.pack("<IIIHBBI", 0xFFFFFFFF, index[attr_name], index[value], 8, 0, 0x03, index[value])
        return struct.pack("<HHI", 0x0102, 16, 16 + len(body)) + struct.pack("<II", 1, 0xFFFFFFFF) + body

    def end(name: str) -> bytes:
        return struct.pack("<HHI", 0x0103, 16, 24) + struct.pack("<II", 1, 0xFFFFFFFF) + struct.pack(
            "<II", 0xFFFFFFFF, index[name])

    chunks = pool + start("manifest", [("package", package)])
    for permission in permissions:
        chunks += start("uses-permission", [("name", permission)]) + end("uses-permission")
    chunks += start("application", []) + end("application") + end("manifest")
    return struct.pack("<HHI", 0x0003, 8, 8 + len(chunks)) + chunks
