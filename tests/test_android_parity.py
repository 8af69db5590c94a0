"""The suite gives the same verdicts on the Android target (adb double + reference app) as on the
reference target: the clean app and planted defects, through `backup-harness run`.

A sample of modules and defects keeps this to about two minutes on two cores. docs/android.md
records the full matrix (every defect, every module) run the same way.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from android_support import SERIAL

from harness.android.double import AdbDouble
from harness.android.double.reference_host import install_reference_app

pytestmark = [pytest.mark.oracle, pytest.mark.slow]

REPOSITORY = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())"]
CASES = [
    (None, "encryption"),
    ("key-to-log", "encryption"),
    ("restore-ignores-mac", "restore"),
]


def run_suite(report: Path, module: str, arguments: list[str]) -> dict[str, str]:
    command = [*CLI, "run", "--report", str(report), "--only", module, *arguments]
    finished = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=900)
    summary = report / "summary.json"
    assert summary.is_file(), f"no summary from {' '.join(arguments)}:\n{finished.stdout[-3000:]}{finished.stderr[-2000:]}"
    return {test["nodeid"]: test["outcome"] for test in json.loads(summary.read_text())["tests"]}


@pytest.mark.parametrize(("defect", "module"), CASES, ids=[defect or "clean" for defect, _ in CASES])
def test_same_verdicts_as_reference(defect: str | None, module: str, tmp_path: Path) -> None:
    reference = run_suite(tmp_path / "reference", module, ["--defect", defect] if defect else [])
    with AdbDouble() as double:
        install_reference_app(double.add_device(SERIAL), defects=[defect] if defect else [])
        android = run_suite(tmp_path / "android", module,
                            ["--target", "android", "--adb-server", double.address, "--serial", SERIAL])
    assert reference, "the reference run collected no tests"
    assert android == reference
    failed = {nodeid for nodeid, outcome in reference.items() if outcome not in ("passed", "skipped")}
    assert bool(failed) == bool(defect), f"defect {defect}: failing tests {sorted(failed)}"
