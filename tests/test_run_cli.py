"""`backup-harness run`: usage errors, and one property module run end to end."""

import argparse
import json
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
        (["--serial", "emulator-5554"], "--serial need --target android"),
        (["--only", "teleportation"], "--only teleportation: no such property module"),
        (["--corpus", "/nonexistent/corpus"], "--corpus /nonexistent/corpus: not a directory"),
        (["--scenario", "/nonexistent.yaml"], "--scenario /nonexistent.yaml: file not found"),
        (["--pcap", "/nonexistent.pcap"], "--pcap need --target android"),
        (["--target", "android", "--pcap", "/nonexistent.pcap"], "--pcap /nonexistent.pcap: file not found"),
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
