"""Run summary: atomic rewrites, outcome precedence, the property table."""

import json

import pytest

from harness.report import (
    RunSummary,
    artifact_folder_name,
    format_table,
    load_summary,
    property_of,
    write_json_atomically,
)

NODE = "device_tests/test_restore.py::test_wrong_key_rejected"


def test_property_from_module():
    assert property_of(NODE) == "restore"
    assert property_of("device_tests/test_daily_replacement.py::test_x") == "daily replacement"
    assert property_of("device_tests/test_new_thing.py::test_x") == "new thing"


def test_artifact_folder_name_safe():
    name = artifact_folder_name("device_tests/test_restore.py::test_key[a b/c]")
    assert name == "test_restore-test_key-a-b-c"


def test_atomic_write_leaves_no_temp(tmp_path):
    path = tmp_path / "summary.json"
    write_json_atomically(path, {"a": 1})
    write_json_atomically(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_atomic_write_keeps_old_on_error(tmp_path):
    path = tmp_path / "summary.json"
    write_json_atomically(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomically(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_plan_lists_pending(tmp_path):
    summary = RunSummary(tmp_path, "run-1", {"target": "reference"})
    summary.plan([NODE])
    data = load_summary(tmp_path / "summary.json")
    assert data["tests"][0]["outcome"] == "pending"
    assert data["run_id"] == "run-1"
    assert data["finished_ms"] is None


def test_teardown_error_overrides_pass(tmp_path):
    summary = RunSummary(tmp_path, "run-1", {})
    summary.record(NODE, "passed", 1.0)
    summary.record(NODE, "error", 0.5, "stub server stopped answering")
    entry = summary.tests[NODE]
    assert entry.outcome == "error"
    assert entry.duration_s == 1.5
    assert entry.message == "stub server stopped answering"


def test_failure_kept_over_teardown_error(tmp_path):
    summary = RunSummary(tmp_path, "run-1", {})
    summary.record(NODE, "failed", 1.0, "chat 1, item 2: present")
    summary.record(NODE, "error", 0.1, "teardown")
    assert summary.tests[NODE].outcome == "failed"
    assert summary.tests[NODE].message == "chat 1, item 2: present"


def test_passing_phase_adds_duration_only(tmp_path):
    summary = RunSummary(tmp_path, "run-1", {})
    summary.plan([NODE])
    summary.record(NODE, None, 0.25)
    assert summary.tests[NODE].outcome == "pending"
    assert summary.tests[NODE].duration_s == 0.25


def test_unknown_outcome_rejected(tmp_path):
    with pytest.raises(ValueError):
        RunSummary(tmp_path, "run-1", {}).record(NODE, "flaky")


def test_format_table_totals(tmp_path):
    summary = RunSummary(tmp_path, "run-1", {})
    summary.record(NODE, "passed")
    summary.record("device_tests/test_restore.py::test_b", "failed")
    summary.record("device_tests/test_exclusion.py::test_c", "passed")
    lines = format_table(summary.property_table()).splitlines()
    assert lines[0].split() == ["property", "tests", "passed", "failed", "errors", "skipped"]
    assert lines[2].split() == ["restore", "2", "1", "1", "0", "0"]
    assert lines[3].split() == ["exclusion", "1", "1", "0", "0", "0"]
    assert lines[-1].split() == ["total", "3", "2", "1", "0", "0"]


def test_format_table_empty():
    assert format_table([]).splitlines()[-1].split() == ["total", "0", "0", "0", "0", "0"]


def test_artifacts_redact_registered_secret(tmp_path):
    from harness.artifacts import ArtifactFolder, register_secret
    from harness.keys import display_recovery_key, generate_recovery_key

    key = generate_recovery_key()
    register_secret(key)
    folder = ArtifactFolder(tmp_path / "artifacts")
    path = folder.save_json("traffic.json", {"header": key, "shown": display_recovery_key(key)})
    text = path.read_text()
    assert key not in text
    assert display_recovery_key(key) not in text
    assert text.count("[redacted secret]") == 2
