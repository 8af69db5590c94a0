"""Failure artifacts: screenshot (or its secure-window fallback), hierarchy, logcat, bug report."""

from __future__ import annotations

import zipfile

from android_support import PACKAGE, KeyScreenApp, adb_double, device, make_apk, sim  # noqa: F401 (fixtures)

from harness.android.artifacts import capture_bugreport, capture_failure_artifacts, is_blank_png
from harness.android.logcat import LogcatService
from harness.android.packages import AppPackage
from harness.android.redaction import MASK, Redactor

KEY = "k3y0" * 16


def start_app(device, tmp_path, kind: str) -> None:
    app = AppPackage(device, PACKAGE)
    app.install(make_apk(tmp_path, kind=kind))
    app.start()


def test_screenshot_hierarchy_and_logcat(device, sim, tmp_path) -> None:
    start_app(device, tmp_path, "inert")
    logcat = LogcatService(device)
    logcat.start()
    try:
        position = logcat.position()
        sim.log("App", "the failing step")
        logcat.wait_for("the failing step", timeout=3)
        files = capture_failure_artifacts(device, tmp_path / "artifacts", logcat=logcat, since=position)
    finally:
        logcat.stop()
    names = sorted(path.name for path in files)
    assert names == ["logcat.txt", "screenshot.png", "window.xml"]
    assert (tmp_path / "artifacts" / "screenshot.png").read_bytes().startswith(b"\x89PNG")
    assert not is_blank_png((tmp_path / "artifacts" / "screenshot.png").read_bytes())
    assert f'package="{PACKAGE}"' in (tmp_path / "artifacts" / "window.xml").read_text()
    assert "the failing step" in (tmp_path / "artifacts" / "logcat.txt").read_text()


def test_secure_window_falls_back_to_hierarchy(device, tmp_path) -> None:
    start_app(device, tmp_path, "test-secure")
    files = capture_failure_artifacts(device, tmp_path / "artifacts")
    assert sorted(path.name for path in files) == ["screenshot.txt", "window.xml"]
    assert "FLAG_SECURE" in (tmp_path / "artifacts" / "screenshot.txt").read_text()
    assert "Recovery key" in (tmp_path / "artifacts" / "window.xml").read_text()


def test_secret_on_screen_is_never_captured(device, tmp_path) -> None:
    start_app(device, tmp_path, "test-key-screen")
    KeyScreenApp.shown_text = " ".join(KEY.upper()[i:i + 4] for i in range(0, 64, 4))
    redactor = Redactor()
    redactor.add(KEY)
    files = capture_failure_artifacts(device, tmp_path / "artifacts", redactor=redactor)
    assert "screenshot.png" not in [path.name for path in files]
    hierarchy = (tmp_path / "artifacts" / "window.xml").read_text()
    assert MASK in hierarchy
    assert "K3Y0" not in hierarchy


def test_offline_device_records_errors_instead_of_raising(adb_double, sim, tmp_path) -> None:
    from harness.android.device import connect

    flaky = connect(adb_double.address, sim.serial, reconnect_timeout=0.3)
    sim.go_offline()
    files = capture_failure_artifacts(flaky, tmp_path / "artifacts")
    assert [path.name for path in files] == ["artifacts-errors.txt"]
    text = (tmp_path / "artifacts" / "artifacts-errors.txt").read_text()
    assert "window hierarchy:" in text
    assert "screenshot:" in text


def test_bugreport_is_pulled_and_redacted(device, sim, tmp_path) -> None:
    sim.log("Leaky", f"recovery key {KEY}")
    redactor = Redactor()
    redactor.add(KEY)
    path = capture_bugreport(device, tmp_path / "bugreport.zip", redactor)
    with zipfile.ZipFile(path) as archive:
        texts = [archive.read(name).decode() for name in archive.namelist() if name.endswith(".txt")]
    joined = "\n".join(texts)
    assert "SYSTEM LOG" in joined
    assert KEY not in joined
    assert MASK in joined
