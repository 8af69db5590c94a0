"""The logcat service: positions, wait_for, excerpts with redaction, disconnects, pause/resume."""

from __future__ import annotations

import time

import pytest
from android_support import SERIAL, adb_double, device, sim  # noqa: F401 (fixtures)

from harness.android.device import connect
from harness.android.errors import DeviceOfflineError, LogWaitTimeoutError
from harness.android.logcat import LogcatService
from harness.android.redaction import MASK, Redactor
from harness.targets.base import LogPosition

KEY = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqr"[:64]


@pytest.fixture
def logcat(device):
    service = LogcatService(device, reconnect_timeout=2)
    service.start()
    yield service
    service.stop()


def test_captures_only_lines_after_start(sim, device) -> None:
    sim.log("Before", "old line")
    time.sleep(0.01)
    service = LogcatService(device)
    service.start()
    try:
        sim.log("BackupJob", "backup started trigger=manual")
        line = service.wait_for(r"backup started", timeout=3)
        assert "I BackupJob: backup started trigger=manual" in line.text
        assert not any("old line" in entry.text for entry in service.read())
    finally:
        service.stop()


def test_wait_for_respects_since(sim, logcat) -> None:
    sim.log("BackupJob", "backup uploaded size=10")
    first = logcat.wait_for("backup uploaded", timeout=3)
    after = LogPosition(first.position.offset + 1)
    sim.log("BackupJob", "backup uploaded size=20")
    second = logcat.wait_for("backup uploaded", since=after, timeout=3)
    assert "size=20" in second.text
    assert second.position.offset > first.position.offset
    assert logcat.read(after)[0].text == second.text


def test_wait_for_times_out_with_a_typed_error(logcat) -> None:
    with pytest.raises(LogWaitTimeoutError, match=r"no logcat line on emulator-5554 matched /never/ within 0.3 s"):
        logcat.wait_for("never", timeout=0.3)


def test_survives_a_disconnect_without_duplicates(sim, logcat) -> None:
    for index in range(3):
        sim.log("App", f"line {index}")
    logcat.wait_for("line 2", timeout=3)
    sim.go_offline(0.4)
    time.sleep(0.1)
    sim.log("App", "written while offline")
    line = logcat.wait_for("written while offline", timeout=5)
    sim.log("App", "after reconnect")
    logcat.wait_for("after reconnect", since=line.position, timeout=3)
    texts = [entry.text.split(": ", 1)[1] for entry in logcat.read() if " App: " in entry.text]
    assert texts == ["line 0", "line 1", "line 2", "written while offline", "after reconnect"]
    assert logcat.reconnects == 1
    assert logcat.is_alive


def test_device_that_never_returns_fails_waiters(sim, logcat) -> None:
    sim.go_offline()
    with pytest.raises(DeviceOfflineError, match="did not come back online within 2 s"):
        logcat.wait_for("anything", timeout=10)
    assert not logcat.is_alive


def test_pause_and_resume_lose_nothing(sim, logcat) -> None:
    sim.log("App", "before pause")
    logcat.wait_for("before pause", timeout=3)
    logcat.pause()
    sim.log("App", "during pause")
    logcat.resume()
    sim.log("App", "after resume")
    logcat.wait_for("after resume", timeout=3)
    texts = [entry.text.split(": ", 1)[1] for entry in logcat.read() if " App: " in entry.text]
    assert texts == ["before pause", "during pause", "after resume"]


def test_excerpts_mask_secrets_but_keep_raw_lines(sim, device, tmp_path) -> None:
    redactor = Redactor()
    redactor.add(KEY)
    service = LogcatService(device, redactor=redactor)
    service.start()
    try:
        display = " ".join(KEY.upper()[i:i + 4] for i in range(0, 64, 4))
        sim.log("Leaky", f"key={KEY}")
        sim.log("Leaky", f"shown {display}")
        service.wait_for("shown", timeout=3)
        files = service.create_output_excerpts("test_backup[free]", tmp_path)
        assert files[0].name == f"logcat,{SERIAL},test_backup_free.txt"
        text = files[0].read_text()
        assert KEY not in text
        assert KEY[:16].upper() not in text
        assert text.count(MASK) == 2
        assert any(KEY in line.text for line in service.read())
        sim.log("App", "next test")
        service.wait_for("next test", timeout=3)
        second = service.create_output_excerpts("test_next", tmp_path)[0].read_text()
        assert "next test" in second
        assert "Leaky" not in second
    finally:
        service.stop()


def test_listeners_receive_lines(sim, logcat) -> None:
    seen = []
    logcat.add_listener(lambda line: seen.append(line.text))
    sim.log("App", "for the leak scan")
    logcat.wait_for("for the leak scan", timeout=3)
    assert any("for the leak scan" in text for text in seen)


def test_start_twice_is_a_programming_error(logcat) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        logcat.start()


def test_stop_is_idempotent(adb_double) -> None:
    service = LogcatService(connect(adb_double.address, SERIAL))
    service.stop()
    service.start()
    service.stop()
    service.stop()
