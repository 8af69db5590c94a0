"""The pytest plugin: inert by default, summary written as the run goes, artifacts, allure."""

import json

pytest_plugins = ["pytester"]

SAMPLE = """
import json
from pathlib import Path

import pytest

from harness.errors import DeviceError


def test_first_sees_rest_pending(request):
    summary = json.loads((Path(request.config.getoption("harness_report")) / "summary.json").read_text())
    outcomes = {test["nodeid"].split("::")[1]: test["outcome"] for test in summary["tests"]}
    assert outcomes["test_second_fails"] == "pending"


def test_second_fails():
    assert 1 == 2, "chat 3, item 57: view-once attachment present"


def test_third_device_missing():
    raise DeviceError("device emulator-5554 not found")


def test_fourth_saves_artifacts(artifacts):
    artifacts.save_text("app-log.txt", "backup uploaded")
    artifacts.save_json("archive-summary.json", {"chat_items": 3})
"""


def run_sample(pytester, *extra):
    pytester.makepyfile(test_exclusion=SAMPLE)
    report = pytester.path / "report"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--harness-report", str(report), *extra)
    return result, report


def load_summary(report):
    return json.loads((report / "summary.json").read_text())


def test_plugin_inert_without_report(pytester):
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert not list(pytester.path.rglob("summary.json"))


def test_plugin_options_listed(pytester):
    result = pytester.runpytest_subprocess("--help")
    output = result.stdout.str()
    for option in ("--target", "--serial", "--pcap", "--policy", "--defect", "--scenario", "--harness-report"):
        assert option in output


def test_summary_written_during_run(pytester):
    result, report = run_sample(pytester)
    result.assert_outcomes(passed=2, failed=2)
    outcomes = {test["nodeid"].split("::")[1]: test["outcome"] for test in load_summary(report)["tests"]}
    assert outcomes["test_first_sees_rest_pending"] == "passed"


def test_summary_outcomes_and_messages(pytester):
    _, report = run_sample(pytester)
    tests = {test["nodeid"].split("::")[1]: test for test in load_summary(report)["tests"]}
    assert tests["test_second_fails"]["outcome"] == "failed"
    assert tests["test_second_fails"]["message"].startswith("chat 3, item 57: view-once attachment present")
    assert tests["test_third_device_missing"]["outcome"] == "error"
    assert "emulator-5554" in tests["test_third_device_missing"]["message"]


def test_summary_property_table(pytester):
    _, report = run_sample(pytester)
    summary = load_summary(report)
    assert summary["properties"] == [
        {"property": "exclusion", "tests": 4, "passed": 2, "failed": 1, "errors": 1, "skipped": 0}
    ]
    assert summary["exit_status"] == 1
    assert summary["settings"]["target"] == "reference"


def test_artifacts_in_report_folder(pytester):
    _, report = run_sample(pytester)
    tests = {test["nodeid"].split("::")[1]: test for test in load_summary(report)["tests"]}
    folder = report / tests["test_fourth_saves_artifacts"]["artifacts"]
    assert (folder / "app-log.txt").read_text() == "backup uploaded"
    assert json.loads((folder / "archive-summary.json").read_text()) == {"chat_items": 3}


def test_artifacts_attached_to_allure(pytester):
    allure_dir = pytester.path / "allure"
    run_sample(pytester, "--alluredir", str(allure_dir))
    results = [json.loads(path.read_text()) for path in allure_dir.glob("*-result.json")]
    by_name = {result["name"]: result for result in results}
    names = sorted(item["name"] for item in by_name["test_fourth_saves_artifacts"]["attachments"])
    assert names == ["app-log.txt", "archive-summary.json"]


def test_junit_written_alongside(pytester):
    junit = pytester.path / "junit.xml"
    run_sample(pytester, "--junitxml", str(junit))
    text = junit.read_text()
    assert 'name="test_second_fails"' in text
    assert 'name="artifacts"' in text


DEVICE_SAMPLE = """
from pathlib import Path

import pytest

from harness.artifacts import register_secret
from harness.errors import DeviceError
from harness.targets.base import LogLine, LogPosition

SECRET = "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz01"
register_secret(SECRET)


class CapturingTarget:
    name = "android"

    def __init__(self, broken=False):
        self.broken = broken

    def log_position(self):
        return LogPosition(0)

    def read_log(self, since=None):
        return [LogLine(LogPosition(0), "backup started")]

    def capture_artifacts(self, destination):
        (destination / "window.xml").write_text("<node text='" + SECRET + "'/>")
        (destination / "screenshot.png").write_bytes(b"\\x89PNG\\r\\n\\x1a\\n")
        if self.broken:
            raise DeviceError("device emulator-5554 went offline")
        (destination / "logcat").mkdir()
        (destination / "logcat" / "excerpt.txt").write_text("key " + SECRET)


@pytest.fixture
def target(request):
    return CapturingTarget(broken="broken" in request.node.name)


def test_passes(target):
    pass


def test_skips(target):
    pytest.skip("target offers no packet capture")


def test_fails(target):
    assert False, "backup screen shows an error"


def test_fails_broken_capture(target):
    assert False, "restore failed"
"""


def run_device_sample(pytester, *extra):
    pytester.makepyfile(test_restore=DEVICE_SAMPLE)
    report = pytester.path / "report"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--harness-report", str(report), *extra)
    tests = {test["nodeid"].split("::")[1]: test for test in load_summary(report)["tests"]}
    return result, report, tests


def test_failed_test_gets_target_artifacts(pytester):
    result, report, tests = run_device_sample(pytester)
    result.assert_outcomes(passed=1, failed=2, skipped=1)
    folder = report / tests["test_fails"]["artifacts"]
    names = sorted(path.name for path in folder.iterdir())
    assert names == ["app-log.txt", "target-logcat-excerpt.txt", "target-screenshot.png", "target-window.xml"]
    assert (folder / "target-screenshot.png").read_bytes() == b"\x89PNG\r\n\x1a\n"
    for name in ("target-window.xml", "target-logcat-excerpt.txt"):
        text = (folder / name).read_text()
        assert "[redacted secret]" in text, name
        assert "abcdefghijklmnopqrstuvwxyz0123456789" not in text, name


def test_passed_or_skipped_test_gets_no_target_artifacts(pytester):
    _, report, tests = run_device_sample(pytester)
    for name in ("test_passes", "test_skips"):
        folder = report / tests[name]["artifacts"]
        assert sorted(path.name for path in folder.iterdir()) == ["app-log.txt"], name


def test_broken_capture_keeps_failure(pytester):
    _, report, tests = run_device_sample(pytester)
    failing = tests["test_fails_broken_capture"]
    assert failing["outcome"] == "failed"
    assert failing["message"].startswith("restore failed")
    names = sorted(path.name for path in (report / failing["artifacts"]).iterdir())
    assert names == ["app-log.txt", "target-screenshot.png", "target-window.xml"]


def test_target_artifacts_attached_to_allure(pytester):
    allure_dir = pytester.path / "allure"
    run_device_sample(pytester, "--alluredir", str(allure_dir))
    results = {result["name"]: result for result in
               (json.loads(path.read_text()) for path in allure_dir.glob("*-result.json"))}
    names = sorted(item["name"] for item in results["test_fails"]["attachments"])
    assert "target-window.xml" in names
    assert "target-screenshot.png" in names


def test_pcap_needs_android_target(pytester):
    capture = pytester.path / "emulator.pcap"
    capture.write_bytes(b"")
    pytester.makepyfile("def test_settings(harness_settings):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--pcap", str(capture))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*UsageError: --pcap needs --target android*"])


def test_pcap_reaches_settings(pytester):
    capture = pytester.path / "emulator.pcap"
    capture.write_bytes(b"")
    pytester.makepyfile(
        "def test_settings(harness_settings):\n"
        f"    assert str(harness_settings.pcap) == {str(capture)!r}\n"
        "    assert harness_settings.target == 'android'\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--target", "android", "--pcap", str(capture))
    result.assert_outcomes(passed=1)
