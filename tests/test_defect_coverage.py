"""Every check of the device suite is meant to catch at least one planted defect.

The project rule: each test in ``device_tests/`` catches a planted defect of the reference app,
and a check that catches nothing is a gap in the suite. ``MATRIX`` in
``tests/test_defect_matrix.py`` maps each defect to the tests meant to catch it, and the slow
matrix run proves it. This guard is the fast, static half, because it only parses the
suite's modules. It fails when a test is in no defect's list or when the table names a test
that does not exist. It also fails when a defect of ``reference_app/defects.py`` is missing
from the table, or the table names a defect the app does not plant.
"""

from __future__ import annotations

import ast
from pathlib import Path

from reference_app.defects import DEFECTS
from test_defect_matrix import MATRIX

SUITE = Path(__file__).resolve().parents[1] / "device_tests"

# Tests that check no behaviour of the app, so no defect can be meant for them. Keep it short:
# each entry needs a reason, and a real check of the app belongs in MATRIX instead.
NOT_APP_CHECKS: dict[str, str] = {
    # Reads Signal's own frame streams through the harness's rules, writer and libsignal. The
    # app plays no part.
    "test_corpus.py::test_corpus_archive_round_trip": "harness round trip of Signal's files",
    # Collected only with --corpus DIR, which the matrix runs do not pass.
    "test_corpus.py::test_corpus_restore_round_trip": "runs only with a corpus folder",
    # Guards that keep the real checks of their module from passing on empty data.
    "test_encryption.py::test_stub_received_both_archives": "set-up assertion",
    "test_exclusion.py::test_archive_summary_saved": "saves the archive summary artifact",
    "test_unlinkability.py::test_backups_complete": "set-up assertion",
    "test_unlinkability.py::test_archive_plane_was_used": "set-up assertion",
    # Needs the Android target's packet capture, so it skips on the reference app.
    "test_encryption.py::test_no_canary_or_key_in_packet_capture": "Android target only",
}


def suite_tests() -> set[str]:
    """Return every test of the suite as ``module::function`` (parameters count once)."""
    found = set()
    for path in sorted(SUITE.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                names = [child.name for child in node.body if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)]
                found.update(f"{path.name}::{node.name}::{name}" for name in names if name.startswith("test"))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                found.add(f"{path.name}::{node.name}")
    return found


def listed_tests() -> set[str]:
    return {test for tests in MATRIX.values() for test in tests}


def test_suite_has_tests():
    assert len(suite_tests()) >= 40, f"only {len(suite_tests())} tests found under {SUITE}"


def test_every_check_has_a_defect():
    uncovered = sorted(suite_tests() - listed_tests() - set(NOT_APP_CHECKS))
    assert not uncovered, (
        f"{len(uncovered)} device test(s) are meant to catch no planted defect; plant one in "
        "reference_app/defects.py and add it to MATRIX in tests/test_defect_matrix.py:\n  " + "\n  ".join(uncovered)
    )


def test_matrix_names_existing_tests():
    unknown = sorted(listed_tests() - suite_tests())
    assert not unknown, "MATRIX names tests that device_tests/ does not define:\n  " + "\n  ".join(unknown)


def test_matrix_lists_exactly_the_defects():
    missing = sorted(set(DEFECTS) - set(MATRIX))
    unknown = sorted(set(MATRIX) - set(DEFECTS))
    assert not missing, "defects of reference_app/defects.py with no entry in MATRIX: " + ", ".join(missing)
    assert not unknown, "MATRIX entries that are not defects of reference_app/defects.py: " + ", ".join(unknown)


def test_every_defect_is_meant_for_a_test():
    empty = sorted(defect for defect, tests in MATRIX.items() if not tests)
    assert not empty, "MATRIX entries without a test: " + ", ".join(empty)


def test_allow_list_does_not_hide_listed_tests():
    both = sorted(set(NOT_APP_CHECKS) & listed_tests())
    assert not both, "tests both in NOT_APP_CHECKS and in MATRIX: " + ", ".join(both)
