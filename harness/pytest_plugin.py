"""pytest plugin that runs `device_tests/` against a target (registered as an entry point).

pytest loads this plugin in every run of this repository, so it stays inert unless asked:
its fixtures start nothing until a test requests them, and the run summary and artifact
folders are written only with ``--harness-report DIR``.

Options (group "backup-harness" in ``pytest --help``):

* ``--target reference|android``, ``--serial``, ``--adb-server``, ``--apk``, ``--profile``,
  ``--pcap`` (the emulator's packet capture, scanned for leaks);
* ``--policy android|ios`` (the exclusion boundary checked), ``--defect NAME`` (reference
  app only, repeatable), ``--scenario FILE``, ``--corpus DIR``;
* ``--stub-admin-url URL`` to use a running stub server instead of starting one;
* ``--harness-report DIR`` and ``--run-id ID`` for the summary and artifacts.

Fixtures: ``stub``, ``target``, ``account``, ``recovery_key``, ``recorder``, ``clock``
(module scope, so one prepared app serves the small tests of one property), and
``artifacts`` (per test). A test that uses ``stub`` or ``target`` gets its app log excerpt
saved into its artifact folder automatically. When it fails, the folder also gets the
module's recorded traffic, decrypted archive summaries and the target's own capture
(screenshot, window dump and logcat on a device).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

from harness.errors import InfrastructureError
from harness.report import ARTIFACTS_DIR, RunSummary, artifact_folder_name, new_run_id
from harness.rules.constants import POLICIES

if TYPE_CHECKING:
    from harness.artifacts import ArtifactFolder
    from harness.device_session import SuiteSettings

log = logging.getLogger(__name__)

SUMMARY_KEY = pytest.StashKey["RunSummary"]()
ARTIFACTS_KEY = pytest.StashKey["ArtifactFolder"]()
TEMP_ARTIFACTS_KEY = pytest.StashKey[Path]()

TARGETS = ("reference", "android")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("backup-harness", "backup-harness device suite")
    group.addoption(
        "--target", choices=TARGETS, default="reference", help="target to test (default: reference)"
    )
    group.addoption("--serial", metavar="SERIAL", help="adb serial of the Android device or emulator")
    group.addoption(
        "--adb-server",
        metavar="HOST:PORT",
        default="127.0.0.1:5037",
        help="adb server for --target android (default: 127.0.0.1:5037)",
    )
    group.addoption("--apk", metavar="PATH", help="APK to install on the Android target")
    group.addoption(
        "--profile", metavar="NAME", help="app profile for the Android target (see fixtures/profiles)"
    )
    group.addoption(
        "--pcap",
        metavar="FILE",
        help="packet capture of the emulator (its -tcpdump file) that the suite scans for leaks",
    )
    group.addoption(
        "--policy",
        choices=POLICIES,
        default="android",
        help="exclusion boundary for a timer expiring exactly 24 h after the backup (default: android)",
    )
    group.addoption(
        "--defect",
        action="append",
        default=[],
        metavar="NAME",
        help="planted defect to switch on in the reference app (repeatable)",
    )
    group.addoption("--scenario", metavar="FILE", help="scenario file that replaces the suite's own")
    group.addoption(
        "--corpus",
        metavar="DIR",
        help="add the round trip of every .binproto frame stream in DIR to the suite",
    )
    group.addoption(
        "--stub-admin-url",
        metavar="URL",
        help="admin URL of a running stub server (default: start one for the session)",
    )
    group.addoption(
        "--harness-report",
        metavar="DIR",
        help="write the run summary and per-test artifacts into DIR",
    )
    group.addoption("--run-id", metavar="ID", help="run id recorded in the summary (default: generated)")


# Reporting ------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tier(name): backup tier the test module enables (free or paid)")
    config.addinivalue_line(
        "markers", "no_capture: save no per-test traffic and log artifacts (for many small tests)"
    )
    report_dir = config.getoption("harness_report", None)
    if not report_dir:
        return
    settings = {
        "target": config.getoption("target"),
        "policy": config.getoption("policy"),
        "defects": list(config.getoption("defect")),
        "scenario": config.getoption("scenario"),
        "serial": config.getoption("serial"),
    }
    summary = RunSummary(Path(report_dir), config.getoption("run_id") or new_run_id(), settings)
    config.stash[SUMMARY_KEY] = summary
    config.pluginmanager.register(SummaryReporter(summary), "backup-harness-summary")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[pytest.TestReport]:
    report = yield
    # An infrastructure failure (device, stub, bridge) is kept apart from a failed check.
    if call.excinfo is not None and call.excinfo.errisinstance(InfrastructureError):
        report.user_properties.append(("infrastructure", "true"))
    folder = item.stash.get(ARTIFACTS_KEY, None)
    if folder is None:
        return report
    if call.when == "call" and item.config.getoption("allure_report_dir", None):
        # allure-pytest files attachments under the step that is open, and during the call
        # phase that is the test itself (in a fixture teardown it would be the fixture).
        folder.attach_to_allure()
    if call.when == "teardown":
        report.user_properties.append(("artifacts", str(folder.path)))
    return report


class SummaryReporter:
    """Keeps the run summary file current: the test list first, then each outcome."""

    def __init__(self, summary: RunSummary) -> None:
        self.summary = summary

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.summary.plan(item.nodeid for item in session.items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        artifacts = dict(report.user_properties).get("artifacts", "")
        if artifacts:
            artifacts = _relative_to(Path(artifacts), self.summary.report_dir)
        # One rewrite per test (at its teardown), and at once when a phase fails.
        write = report.when == "teardown" or report.failed
        self.summary.record(
            report.nodeid, outcome_of(report), report.duration, failure_line(report), artifacts, write=write
        )

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.summary.finish(int(exitstatus))


def outcome_of(report: pytest.TestReport) -> str | None:
    """Map one phase report to a summary outcome, or None when the phase changes nothing."""
    infrastructure = ("infrastructure", "true") in report.user_properties
    if report.when == "call":
        if report.passed:
            return "passed"
        if report.skipped:
            return "skipped"
        return "error" if infrastructure else "failed"
    if report.skipped:
        return "skipped"
    if report.failed:
        return "error"
    return None


def failure_line(report: pytest.TestReport) -> str:
    """Return the first line of a failure: the assertion message that names the place."""
    if report.passed:
        return ""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        text = crash.message
    elif isinstance(report.longrepr, tuple):  # a skip: (path, line, reason)
        text = str(report.longrepr[2])
    else:
        text = str(report.longrepr or "")
    lines = text.strip().splitlines()
    first = lines[0] if lines else ""
    return first.removeprefix("AssertionError: ")[:500]


def _relative_to(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


# Artifacts --------------------------------------------------------------------------------


def artifact_folder(item: pytest.Item) -> "ArtifactFolder":
    """Return the artifact folder of a test, creating its object on first use."""
    from harness.artifacts import ArtifactFolder

    folder = item.stash.get(ARTIFACTS_KEY, None)
    if folder is not None:
        return folder
    summary = item.config.stash.get(SUMMARY_KEY, None)
    if summary is not None:
        root = summary.report_dir / ARTIFACTS_DIR / artifact_folder_name(item.nodeid)
    else:
        if TEMP_ARTIFACTS_KEY not in item.config.stash:
            item.config.stash[TEMP_ARTIFACTS_KEY] = Path(tempfile.mkdtemp(prefix="harness-artifacts-"))
        root = item.config.stash[TEMP_ARTIFACTS_KEY] / artifact_folder_name(item.nodeid)
    folder = ArtifactFolder(root)
    item.stash[ARTIFACTS_KEY] = folder
    return folder


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> "ArtifactFolder":
    """A folder for this test's artifacts, attached to the allure result after the test body."""
    return artifact_folder(request.node)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Save the app log of a device test into its artifact folder, and for a failing test
    also the module's recorded traffic, the summaries of the archives its fixtures decrypted
    and the target's capture (see ``harness.device_session.capture_test_artifacts``)."""
    funcargs = getattr(item, "funcargs", {})
    stub, target = funcargs.get("stub"), funcargs.get("target")
    if (stub is None and target is None) or item.get_closest_marker("no_capture"):
        return (yield)
    from harness.device_session import capture_test_artifacts, start_capture

    start = start_capture(stub, target, item.name)
    failed = False
    try:
        return (yield)
    except BaseException as error:
        failed = not isinstance(error, pytest.skip.Exception)  # a skip is no failure to debug
        raise
    finally:
        capture_test_artifacts(artifact_folder(item), stub, target, start, failed=failed, funcargs=funcargs)


# Device fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def harness_settings(request: pytest.FixtureRequest) -> "SuiteSettings":
    from harness.device_session import SuiteSettings

    return SuiteSettings.from_config(request.config)


@pytest.fixture(scope="session")
def stub_server(harness_settings: "SuiteSettings", tmp_path_factory: pytest.TempPathFactory):
    """The stub backup server for the whole session: the one given, or one started here."""
    from harness.device_session import open_stub

    with open_stub(harness_settings, tmp_path_factory.mktemp("stub")) as server:
        yield server


@pytest.fixture(scope="module")
def stub(stub_server):
    """The stub server, with its state and recordings reset at the start of the module."""
    from harness.device_session import reset_stub

    reset_stub(stub_server)
    return stub_server


@pytest.fixture(scope="module")
def target(harness_settings: "SuiteSettings", stub, tmp_path_factory: pytest.TempPathFactory):
    """A fresh target for this module: installed, started, clock set, pointed at the stub."""
    from harness.device_session import open_target

    with open_target(harness_settings, stub, tmp_path_factory.mktemp("target")) as device:
        yield device


def module_tier(request: pytest.FixtureRequest) -> str:
    marker = request.node.get_closest_marker("tier")
    return marker.args[0] if marker else "free"


@pytest.fixture(scope="module")
def account(request: pytest.FixtureRequest, stub, target):
    """A fresh account registered at the stub and on the target (paid with ``tier("paid")``)."""
    from harness.device_session import new_account

    created = new_account(stub, module_tier(request))
    target.register_account(created)
    return created


@pytest.fixture(scope="module")
def clock(stub, target):
    """The simulated time of the stub and the target, moved together."""
    from harness.device_session import SuiteClock

    return SuiteClock(stub, target)


@pytest.fixture(scope="module")
def recorder(request: pytest.FixtureRequest, stub):
    """The stub's recorded requests since the module began."""
    from harness.device_session import Recorder

    return Recorder(stub, request.node.name)


@pytest.fixture(scope="module")
def recovery_key(request: pytest.FixtureRequest, target, account) -> str:
    """Backups enabled on the target (tier from the module's ``tier`` marker, free by default):
    the recovery key as the app displays it. It is redacted from every artifact."""
    from harness.artifacts import register_secret

    key = target.enable_backups(module_tier(request))
    register_secret(key)
    return key
