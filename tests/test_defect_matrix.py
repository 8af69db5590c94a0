"""The defect matrix: every planted defect of the reference app makes the device suite fail,
and the failing tests include the one written to catch it. The clean app passes everything.

Each defect runs ``backup-harness run --defect NAME --only <module>`` for the modules of its
expected tests, two runs at a time, in subprocesses, because a whole run per defect would
take about ten minutes on two cores. ``MATRIX`` is the one table of defect -> tests meant for it; a defect
the app offers but the table lacks fails ``test_matrix_lists_every_defect``.
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
PARALLEL_RUNS = 2
RUN_TIMEOUT_S = 600

# Defect -> the tests meant to catch it (module::test name, parameters ignored).
MATRIX: dict[str, list[str]] = {
    "plaintext-upload": ["test_encryption.py::test_archive_opens_with_recovery_key"],
    "static-iv": ["test_encryption.py::test_fresh_iv_per_archive"],
    "bad-mac": ["test_encryption.py::test_archive_mac_valid"],
    "key-to-server": ["test_encryption.py::test_recovery_key_not_in_requests"],
    "key-to-log": ["test_encryption.py::test_recovery_key_not_in_log"],
    "key-in-settings": ["test_encryption.py::test_recovery_key_not_in_app_files"],
    "keeps-view-once-media": ["test_exclusion.py::test_view_once_are_tombstones"],
    "keeps-short-timers": ["test_exclusion.py::test_short_timers_absent"],
    "ignores-time-left": ["test_exclusion.py::test_expiring_within_24h_absent"],
    "over-excludes": ["test_exclusion.py::test_long_timers_kept_unchanged"],
    "appends-instead-of-replace": ["test_daily_replacement.py::test_no_items_carried_over"],
    "stale-snapshot": ["test_daily_replacement.py::test_archive_from_that_days_run"],
    "keeps-deleted": ["test_daily_replacement.py::test_deleted_messages_gone"],
    "no-refresh": ["test_daily_replacement.py::test_refreshed_each_day"],
    "no-jitter": ["test_daily_replacement.py::test_run_time_jittered"],
    "omit-upload-length": ["test_unlinkability.py::test_upload_form_states_archive_size"],
    "restore-ignores-mac": ["test_restore.py::test_corrupted_archive_fails_cleanly"],
    "partial-restore-on-error": ["test_restore.py::test_broken_frame_leaves_no_partial_data"],
    "commits-before-restore": ["test_restore.py::test_no_commitment_before_restore"],
    "account-auth-on-cdn": ["test_restore.py::test_restore_requests_unlinkable"],
    "account-auth-on-archive-routes": ["test_unlinkability.py::test_archive_plane_has_no_account_credentials"],
    "fetch-credentials-every-call": ["test_unlinkability.py::test_credentials_fetched_ahead"],
    "reuse-presentation": ["test_unlinkability.py::test_presentations_never_reused"],
    "media-window-30-days": ["test_media_retention.py::test_free_recent_media_restored"],
    "sign-media-with-messages-key": ["test_media_retention.py::test_paid_copies_every_attachment"],
    "skip-media-refresh": ["test_media_retention.py::test_paid_refresh_keeps_media_alive"],
    "rotation-keeps-media-key": ["test_key_rotation.py::test_media_root_key_rotated"],
    "skips-thumbnails": ["test_media_retention.py::test_paid_copies_thumbnails"],
    "schedule-in-utc": ["test_daily_replacement.py::test_runs_at_local_backup_time"],
    "new-backup-id-each-day": [
        "test_daily_replacement.py::test_one_message_backup_per_backup_id",
        "test_daily_replacement.py::test_yesterdays_archive_not_retrievable",
        "test_daily_replacement.py::test_archive_holds_days_state",
    ],
    "rotation-keeps-archive-key": [
        "test_key_rotation.py::test_new_archive_opens_with_new_key",
        "test_key_rotation.py::test_new_archive_rejects_old_key",
    ],
    "rotation-keeps-backup-id": ["test_key_rotation.py::test_new_archive_stored_for_new_key"],
    "rotation-deletes-old-backup": ["test_key_rotation.py::test_old_archive_kept_until_new_upload"],
    "media-tier-on-free": ["test_media_retention.py::test_free_uses_no_media_tier"],
    "expired-media-shown-available": ["test_media_retention.py::test_free_old_media_not_restored"],
    "swapped-media-keys": ["test_media_retention.py::test_paid_media_decrypts_to_original"],
    "restore-fails-on-missing-media": ["test_media_retention.py::test_free_restore_succeeds"],
    "free-tier-media-locator": ["test_media_retention.py::test_free_archive_points_to_transit"],
    "filename-in-upload-form": ["test_encryption.py::test_no_canary_in_requests"],
    "logs-message-text": ["test_encryption.py::test_no_canary_in_log"],
    "keeps-plaintext-export": ["test_encryption.py::test_no_canary_outside_message_store"],
    "archive-key-ignores-aci": ["test_encryption.py::test_archive_rejects_other_keys"],
    "chat-timer-on-untimed": ["test_exclusion.py::test_messages_without_timer_kept"],
    "view-once-quote-keeps-attachment": ["test_exclusion.py::test_view_once_quotes_have_no_attachment"],
    "copies-excluded-media": ["test_exclusion.py::test_no_media_of_excluded_messages"],
    "locator-without-cdn-number": ["test_exclusion.py::test_no_structure_findings"],
    "wrong-key-reported-as-corrupt": ["test_restore.py::test_wrong_key_fails_cleanly"],
    "no-key-format-check": ["test_restore.py::test_malformed_key_fails_cleanly"],
    "traceback-in-restore-error": ["test_restore.py::test_truncated_download_fails_cleanly"],
    "missing-reported-as-network": ["test_restore.py::test_missing_archive_fails_cleanly"],
    "caches-missing-backup": ["test_restore.py::test_retry_with_right_key_restores"],
    "restore-drops-reactions": ["test_restore.py::test_restored_messages_match"],
    "aci-on-archive-routes": ["test_unlinkability.py::test_archive_plane_has_no_identifiers"],
    "zk-auth-on-account-routes": ["test_unlinkability.py::test_no_request_mixes_auth"],
    "backup-id-on-account-routes": ["test_unlinkability.py::test_account_plane_hides_backup_id"],
}
# Checks that a defect above also fails and that no defect of their own isolates: repeated
# ciphertext blocks need an unencrypted upload, and excluded text in the archive needs the
# excluded message itself (added with tests/test_defect_coverage.py).
MATRIX["plaintext-upload"] = [*MATRIX["plaintext-upload"], "test_encryption.py::test_no_repeated_ciphertext_blocks"]
MATRIX["keeps-short-timers"] = [*MATRIX["keeps-short-timers"], "test_exclusion.py::test_excluded_content_not_in_archive"]

pytestmark = pytest.mark.slow


def known_defects() -> set[str]:
    listing = subprocess.run(
        [sys.executable, "-m", "reference_app", "--list-defects"],
        cwd=REPOSITORY, capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    return {line.split()[0] for line in listing.splitlines() if line.strip()}


def modules_of(tests: list[str]) -> list[str]:
    return sorted({test.split("::")[0].removeprefix("test_").removesuffix(".py") for test in tests})


def run_suite(report: Path, defect: str | None, modules: list[str]) -> dict:
    command = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())", "run", "--report", str(report)]
    if defect:
        command += ["--defect", defect]
    for module in modules:
        command += ["--only", module]
    finished = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    summary_path = report / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {"tests": []}
    return {"exit": finished.returncode, "summary": summary, "output": finished.stdout[-4000:] + finished.stderr[-2000:]}


def failing(result: dict) -> set[str]:
    """Return the failed tests of a run as module::name, parameters dropped."""
    names = set()
    for test in result["summary"]["tests"]:
        if test["outcome"] == "failed":
            path, _, name = test["nodeid"].partition("::")
            names.add(f"{path.rsplit('/', 1)[-1]}::{name.split('[')[0]}")
    return names


@pytest.fixture(scope="module")
def matrix_runs(tmp_path_factory) -> dict[str | None, dict]:
    """Run the clean suite and every defect's modules, two at a time."""
    jobs: dict[str | None, list[str]] = {None: []}
    for defect, tests in MATRIX.items():
        jobs[defect] = modules_of(tests)
    root = tmp_path_factory.mktemp("matrix")
    with concurrent.futures.ThreadPoolExecutor(PARALLEL_RUNS) as pool:
        futures = {
            defect: pool.submit(run_suite, root / (defect or "clean"), defect, modules)
            for defect, modules in jobs.items()
        }
        results = {defect: future.result() for defect, future in futures.items()}
    (root / "defect-matrix.md").write_text(matrix_markdown(results))
    print(f"\ndefect matrix written to {root / 'defect-matrix.md'}")
    return results


def matrix_markdown(results: dict[str | None, dict]) -> str:
    lines = ["| Defect | Test meant to catch it | Caught | Failing tests in its modules |", "|---|---|---|---|"]
    for defect, tests in MATRIX.items():
        result = results.get(defect)
        failed = failing(result) if result else set()
        caught = "yes" if set(tests) & failed else "no"
        others = ", ".join(sorted(name.split("::")[1] for name in failed)) or "none"
        meant = ", ".join(f"`{test}`" for test in tests)
        lines.append(f"| `{defect}` | {meant} | {caught} | {others} |")
    clean = results.get(None)
    if clean:
        total = len(clean["summary"]["tests"])
        passed = sum(test["outcome"] == "passed" for test in clean["summary"]["tests"])
        lines.append(f"\nClean reference app: {passed} of {total} tests passed (exit status {clean['exit']}).")
    return "\n".join(lines) + "\n"


def test_matrix_lists_every_defect():
    assert set(MATRIX) == known_defects()


# Tests that may skip on the reference target: the packet-capture scan needs an emulator's
# capture (`--pcap`), which only the Android target has.
SKIPS_ON_REFERENCE = {"device_tests/test_encryption.py::test_no_canary_or_key_in_packet_capture"}


def test_clean_app_passes_everything(matrix_runs):
    result = matrix_runs[None]
    outcomes = {test["nodeid"]: test["outcome"] for test in result["summary"]["tests"]}
    not_passed = {
        nodeid: outcome
        for nodeid, outcome in outcomes.items()
        if outcome != "passed" and not (outcome == "skipped" and nodeid in SKIPS_ON_REFERENCE)
    }
    assert outcomes, f"the clean run collected no tests:\n{result['output']}"
    assert not not_passed, f"clean app: {not_passed}\n{result['output']}"
    assert result["exit"] == 0


@pytest.mark.parametrize("defect", sorted(MATRIX))
def test_defect_caught_by_its_test(matrix_runs, defect):
    result = matrix_runs[defect]
    meant = set(MATRIX[defect])
    failed = failing(result)
    assert result["exit"] == 1, f"defect {defect}: run exit status {result['exit']}, expected 1\n{result['output']}"
    assert meant & failed, f"defect {defect}: none of {sorted(meant)} failed; failing: {sorted(failed)}\n{result['output']}"
