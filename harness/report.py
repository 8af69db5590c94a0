"""Run reports: the summary file written as the run goes, and per-test artifact folders.

The summary (``summary.json``) lists every collected test as "pending" before the first one
runs and is rewritten atomically after each test, so an interrupted run still leaves a
usable file. JUnit XML and allure results come from pytest's ``--junitxml`` and
allure-pytest's ``--alluredir``; this module does not write them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

SUMMARY_FILE = "summary.json"
ARTIFACTS_DIR = "artifacts"

# Display names of the properties the suite proves, keyed by test module name.
PROPERTY_NAMES = {
    "test_encryption": "encryption",
    "test_daily_replacement": "daily replacement",
    "test_exclusion": "exclusion",
    "test_media_retention": "media retention",
    "test_restore": "restore",
    "test_unlinkability": "unlinkability",
    "test_key_rotation": "key rotation",
    "test_corpus": "corpus round trip",
}

# Outcomes: "pending" (not run yet), "passed", "failed" (a check failed), "error" (the
# infrastructure or a fixture failed, so the app's correctness is unknown), "skipped".
OUTCOMES = ("pending", "passed", "failed", "error", "skipped")


def property_of(nodeid: str) -> str:
    """Return the property a test proves, named by its module ("test_restore.py" -> "restore")."""
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
    return PROPERTY_NAMES.get(module, module.removeprefix("test_").replace("_", " "))


def artifact_folder_name(nodeid: str) -> str:
    """Turn a test id into a folder name: "test_restore.py::test_wrong_key[x]" -> "test_restore-test_wrong_key-x"."""
    path, _, test = nodeid.partition("::")
    tail = path.rsplit("/", 1)[-1].removesuffix(".py") + "-" + test
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", tail).strip("-")[:150]


def write_json_atomically(path: Path, data: Any) -> None:
    """Write JSON to a temporary file in the same folder, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=2, sort_keys=False)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclasses.dataclass
class TestEntry:
    nodeid: str
    property: str
    outcome: str = "pending"
    duration_s: float = 0.0
    message: str = ""  # first line of the failure, naming its place
    artifacts: str = ""  # folder relative to the report folder, when the test saved any


@dataclasses.dataclass(frozen=True)
class PropertyRow:
    property: str
    tests: int
    passed: int
    failed: int
    errors: int
    skipped: int


class RunSummary:
    """The summary of one run, kept on disk as ``<report>/summary.json``."""

    def __init__(self, report_dir: Path, run_id: str, settings: dict[str, Any]) -> None:
        self.report_dir = Path(report_dir)
        self.path = self.report_dir / SUMMARY_FILE
        self.run_id = run_id
        self.settings = settings  # target, defects, policy, scenario: no secrets
        self.started_ms = int(time.time() * 1000)
        self.finished_ms: int | None = None
        self.exit_status: int | None = None
        self.tests: dict[str, TestEntry] = {}

    def plan(self, nodeids: Iterable[str]) -> None:
        """List the collected tests as pending and write the file."""
        for nodeid in nodeids:
            self.tests.setdefault(nodeid, TestEntry(nodeid, property_of(nodeid)))
        self.write()

    def record(
        self,
        nodeid: str,
        outcome: str | None,
        duration_s: float = 0.0,
        message: str = "",
        artifacts: str = "",
        write: bool = True,
    ) -> None:
        """Store one phase of a test (setup, call or teardown) and rewrite the file if ``write``.

        ``outcome`` None adds the duration and artifacts only (a passing setup or teardown).
        A later "passed" never hides an earlier "failed" or "error", so a teardown error
        shows even after a passing call.
        """
        if outcome is not None and outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        entry = self.tests.setdefault(nodeid, TestEntry(nodeid, property_of(nodeid)))
        keep_earlier = entry.outcome in ("failed", "error") and outcome == "passed"
        if outcome is not None and not keep_earlier:
            if not (entry.outcome == "failed" and outcome == "error"):
                entry.outcome = outcome
            entry.message = entry.message or message
        entry.duration_s = round(entry.duration_s + duration_s, 3)
        entry.artifacts = artifacts or entry.artifacts
        if write:
            self.write()

    def finish(self, exit_status: int) -> None:
        self.finished_ms = int(time.time() * 1000)
        self.exit_status = exit_status
        self.write()

    def property_table(self) -> list[PropertyRow]:
        return property_table(self.tests.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_ms": self.started_ms,
            "finished_ms": self.finished_ms,
            "exit_status": self.exit_status,
            "settings": self.settings,
            "properties": [dataclasses.asdict(row) for row in self.property_table()],
            "tests": [dataclasses.asdict(entry) for entry in self.tests.values()],
        }

    def write(self) -> None:
        write_json_atomically(self.path, self.to_json())


def property_table(entries: Iterable[TestEntry]) -> list[PropertyRow]:
    """Count outcomes per property, in the order the properties first appear."""
    counts: dict[str, dict[str, int]] = {}
    for entry in entries:
        row = counts.setdefault(entry.property, dict.fromkeys(OUTCOMES, 0))
        row[entry.outcome] += 1
    return [
        PropertyRow(
            property=name,
            tests=sum(row.values()),
            passed=row["passed"],
            failed=row["failed"],
            errors=row["error"],
            skipped=row["skipped"],
        )
        for name, row in counts.items()
    ]


def load_summary(path: Path) -> dict[str, Any]:
    """Read a summary file written by ``RunSummary``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def format_table(rows: list[PropertyRow]) -> str:
    """Render the property table as aligned text with a total line."""
    header = ("property", "tests", "passed", "failed", "errors", "skipped")
    body = [
        (row.property, row.tests, row.passed, row.failed, row.errors, row.skipped) for row in rows
    ]
    totals = ("total", *(sum(column) for column in list(zip(*body))[1:])) if body else ("total", 0, 0, 0, 0, 0)
    lines = [header, *body, totals]
    width = max(len(str(line[0])) for line in lines)
    rendered = []
    for index, line in enumerate(lines):
        cells = [str(line[0]).ljust(width)] + [str(value).rjust(7) for value in line[1:]]
        rendered.append("  ".join(cells))
        if index == 0 or index == len(lines) - 2:
            rendered.append("-" * len(rendered[-1]))
    return "\n".join(rendered)


def new_run_id() -> str:
    """Return a run id that sorts by start time: "20250614-020311-4f2a"."""
    return time.strftime("%Y%m%d-%H%M%S", time.localtime()) + "-" + os.urandom(2).hex()
