"""`backup-harness run`: usage errors, and one property module run end to end."""

import argparse
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main

REPOSITORY = Path(__file__).resolve().parents[1]


def run_cli(*arguments, timeout=300):
    return subprocess.run(
        [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())", *arguments],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=timeout,
    )


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["--defect", "no-such-defect"], "unknown defect 'no-such-defect'; valid names: "),
        (["--target", "android", "--defect", "static-iv"], "--defect applies to the reference app only"),
        (["--serial", "emulator-5554"], "--serial needs --target android"),
        (["--only", "teleportation"], "--only teleportation: no such property module"),
        (["--corpus", "/nonexistent/corpus"], "--corpus /nonexistent/corpus: not a directory"),
        (["--scenario", "/nonexistent.yaml"], "--scenario /nonexistent.yaml: file not found"),
        (["--pcap", "/nonexistent.pcap"], "--pcap needs --target android"),
        (["--target", "android", "--pcap", "/nonexistent.pcap"], "--pcap /nonexistent.pcap: file not found"),
        (["--serial", "a", "--apk", "b.apk"], "--serial, --apk need --target android"),
        (["--report", "/proc/nope", "--only", "restore"], "cannot create report folder /proc/nope: "),
        (["--target", "android", "--profile", "nosuch"], "app profile 'nosuch' not found: pass a YAML file or one of "),
        (["--target", "android", "--apk", "nosuch.apk"], "--apk nosuch.apk: file not found"),
    ],
)
def test_run_usage_errors(capsys, arguments, expected):
    code = main(["run", *arguments])
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err
    assert "Traceback" not in err


def test_run_empty_corpus_rejected(tmp_path, capsys):
    assert main(["run", "--corpus", str(tmp_path)]) == 2
    assert "no .binproto files" in capsys.readouterr().err


@pytest.mark.slow
def test_run_one_module_green(tmp_path):
    report = tmp_path / "report"
    result = run_cli("run", "--only", "unlinkability", "--report", str(report))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("[1/") and " PASS  unlinkability " in line for line in lines)
    table_rows = [line.split() for line in lines if line.startswith("unlinkability ")]
    assert table_rows, result.stdout
    assert table_rows[0][2] == table_rows[0][1]  # passed == tests
    assert table_rows[0][3] == "0"  # failed
    summary = json.loads((report / "summary.json").read_text())
    assert summary["exit_status"] == 0
    assert {test["outcome"] for test in summary["tests"]} == {"passed"}
    assert (report / "junit.xml").is_file()
    assert list((report / "allure-results").glob("*-result.json"))


@pytest.mark.slow
def test_run_with_defect_fails(tmp_path):
    report = tmp_path / "report"
    result = run_cli("run", "--only", "unlinkability", "--defect", "reuse-presentation", "--report", str(report))
    assert result.returncode == 1, result.stdout + result.stderr
    assert " FAIL  unlinkability     test_presentations_never_reused" in result.stdout
    assert "reuses the credential presentation of request #" in result.stdout


def test_run_rejects_non_capture_pcap(tmp_path, capsys):
    text_file = tmp_path / "capture.pcap"
    text_file.write_text("not a capture\n")
    assert main(["run", "--target", "android", "--pcap", str(text_file)]) == 2
    err = capsys.readouterr().err
    assert f"{text_file} is not a pcap or pcapng file" in err
    assert "Traceback" not in err


def test_run_passes_pcap_to_pytest(tmp_path):
    from harness.cli.run import pytest_arguments

    args = argparse.Namespace(
        only=[], corpus=None, target="android", policy="android", defect=[], scenario=None, serial="emulator-5554",
        adb_server=None, apk=None, profile=None, pcap=tmp_path / "emulator.pcap", select=None,
    )
    arguments = pytest_arguments(args, tmp_path, "run-1", "http://127.0.0.1:1")
    assert arguments[arguments.index("--pcap") + 1] == str(tmp_path / "emulator.pcap")


def test_run_report_path_is_file(tmp_path, capsys):
    existing = tmp_path / "summary.txt"
    existing.write_text("not a folder\n")
    assert main(["run", "--only", "restore", "--report", str(existing)]) == 2
    err = capsys.readouterr().err
    assert f"cannot create report folder {existing}: a file of that name exists" in err
    assert "pass a writable --report DIR" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "text, expected",
    [
        ("name: broken\nmessages: [\n", ":3:1: "),
        ("just a string\n", ""),
        (None, ":34:"),
    ],
)
def test_run_rejects_malformed_scenario(tmp_path, capsys, text, expected):
    if text is None:  # a real scenario with one bad duration
        text = (REPOSITORY / "fixtures/scenarios/daily-life.yaml").read_text().replace("expires_in: 4w", "expires_in: 25x")
        expected = ":34:17: chats[2].expires_in: '25x' is not a duration"
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(text)
    assert main(["run", "--only", "restore", "--scenario", str(scenario), "--report", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"backup-harness: error: {scenario}:")
    assert expected in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def free_loopback_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_run_device_missing(tmp_path, capsys):
    from harness.android.double import AdbDouble

    with AdbDouble() as double:
        double.add_device("emulator-5554")
        code = main(["run", "--target", "android", "--adb-server", double.address, "--serial", "emulator-9999",
                     "--report", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 3
    assert "device emulator-9999 not found on adb server" in err
    assert "attached: emulator-5554" in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_run_adb_server_unreachable(tmp_path, capsys):
    port = free_loopback_port()
    code = main(["run", "--target", "android", "--adb-server", f"127.0.0.1:{port}", "--report", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 3
    assert f"no adb server answers at 127.0.0.1:{port}" in err
    assert len(err.splitlines()) == 1
