"""The Android subcommands: device-double, emulator start (with a stand-in SDK binary), farm."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import adbutils
import pytest
from android_support import SERIAL

from harness.android.double import AdbDouble
from harness.cli import main

REPOSITORY = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())"]


def start_double(*args: str) -> tuple[subprocess.Popen[str], dict]:
    process = subprocess.Popen([*CLI, "device-double", "--json", *args], cwd=REPOSITORY, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if not line:
        process.wait(30)
        pytest.fail(f"device-double printed nothing: {process.stderr.read()}")
    return process, json.loads(line)


def test_device_double_serves_the_reference_app() -> None:
    process, ready = start_double("--serial", "emulator-5580")
    try:
        assert ready["serial"] == "emulator-5580"
        host, port = ready["adb_server"].split(":")
        assert host == "127.0.0.1"
        device = adbutils.AdbClient(host, int(port)).device("emulator-5580")
        assert "package:org.backupharness.reference" in device.shell("pm list packages -3")
        assert device.shell("run-as org.backupharness.reference id").startswith("uid=")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


def test_device_double_rejects_unknown_defects() -> None:
    result = subprocess.run([*CLI, "device-double", "--defect", "no-such-defect"], cwd=REPOSITORY,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "unknown defect 'no-such-defect'; valid names: " in result.stderr
    assert "bad-mac" in result.stderr
    assert "Traceback" not in result.stderr


def test_device_double_plain_output(tmp_path) -> None:
    process = subprocess.Popen([*CLI, "device-double"], cwd=REPOSITORY, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("adb_server=127.0.0.1:")
        assert line.strip().endswith(f"serial={SERIAL}")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)


@pytest.fixture
def fake_sdk(tmp_path, monkeypatch) -> Path:
    """An SDK folder whose emulator lists one AVD, records its arguments and then idles."""
    sdk = tmp_path / "sdk"
    (sdk / "emulator").mkdir(parents=True)
    emulator = sdk / "emulator" / "emulator"
    emulator.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-list-avds" ]; then echo test_avd; exit 0; fi\n'
        f'echo "$@" > {tmp_path}/emulator-args\n'
        "exec sleep 60\n"
    )
    emulator.chmod(0o755)
    monkeypatch.setenv("ANDROID_SDK_ROOT", str(sdk))
    monkeypatch.delenv("ANDROID_HOME", raising=False)
    return sdk


def test_emulator_start_waits_for_boot(fake_sdk, tmp_path, capsys) -> None:
    with AdbDouble() as double:
        double.add_device("emulator-5556")
        code = main(["emulator", "start", "--avd", "test_avd", "--port", "5556", "--adb-server", double.address,
                     "--tcpdump", str(tmp_path / "net.pcap"), "--log", str(tmp_path / "emu.log"), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["serial"] == "emulator-5556"
    arguments = (tmp_path / "emulator-args").read_text().split()
    assert arguments[:4] == ["-avd", "test_avd", "-port", "5556"]
    assert "-no-window" in arguments
    assert arguments[arguments.index("-tcpdump") + 1] == str(tmp_path / "net.pcap")
    os.kill(result["pid"], signal.SIGTERM)


def test_emulator_boot_timeout_stops_the_emulator(fake_sdk, tmp_path, capsys) -> None:
    with AdbDouble() as double:
        started = time.monotonic()
        code = main(["emulator", "start", "--avd", "test_avd", "--port", "5558", "--adb-server", double.address,
                     "--boot-timeout", "1.5", "--log", str(tmp_path / "emu.log")])
    assert code == 3
    assert time.monotonic() - started < 20
    assert "emulator-5558 did not boot within 1.5 s" in capsys.readouterr().err


def test_emulator_errors_name_the_fix(fake_sdk, tmp_path, capsys, monkeypatch) -> None:
    assert main(["emulator", "start", "--avd", "missing_avd"]) == 2
    assert "AVD 'missing_avd' not found; available: test_avd" in capsys.readouterr().err
    assert main(["emulator", "start", "--avd", "test_avd", "--port", "5555"]) == 2
    assert "must be even" in capsys.readouterr().err
    monkeypatch.setenv("ANDROID_SDK_ROOT", str(tmp_path / "nowhere"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert main(["emulator", "start", "--avd", "test_avd"]) == 2
    assert "the Android SDK's emulator was not found: set ANDROID_SDK_ROOT" in capsys.readouterr().err


def test_farm_without_devices_is_a_usage_error(capsys) -> None:
    with AdbDouble() as double:
        assert main(["farm", "--adb-server", double.address]) == 2
    assert "no online device on adb server 127.0.0.1:" in capsys.readouterr().err


@pytest.mark.oracle
@pytest.mark.slow
def test_farm_runs_each_device_with_its_own_report(tmp_path, capsys) -> None:
    with AdbDouble() as double:
        from harness.android.double.reference_host import install_reference_app

        for serial in ("emulator-5554", "emulator-5556"):
            install_reference_app(double.add_device(serial))
        code = main(["farm", "--adb-server", double.address, "--report", str(tmp_path / "farm"),
                     "--only", "encryption", "-k", "test_archive_mac_valid or test_recovery_key_not_in_log"])
    summary = json.loads((tmp_path / "farm" / "farm-summary.json").read_text())
    assert [device["serial"] for device in summary["devices"]] == ["emulator-5554", "emulator-5556"]
    for device in summary["devices"]:
        assert device["exit"] == 0, (Path(device["report"]) / "run.log").read_text()[-3000:]
        assert device["counts"] == {"passed": 2}
        assert (Path(device["report"]) / "summary.json").is_file()
    assert code == 0
    output = capsys.readouterr().out
    assert "[emulator-5556]" in output
    assert "farm summary:" in output
