"""`backup-harness run`: the main job.

The job starts an embedded stub server and runs the device suite (``device_tests/``) on the
target through pytest and the harness plugin. It prints one progress line per test and a
final table per property. The report folder gets ``summary.json`` (rewritten after every
test), ``junit.xml``, ``allure-results/`` and ``artifacts/``. The exit status is 0 when every
test passed, 1 when a check failed and 3 when only the infrastructure failed.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

import pytest

from harness.errors import DeviceError, UsageError
from harness.report import format_table, load_summary, new_run_id, property_of
from harness.rules.constants import POLICIES

log = logging.getLogger(__name__)

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INFRASTRUCTURE = 3
EXIT_INTERRUPTED = 130

REPOSITORY = Path(__file__).resolve().parents[2]
SUITE_DIR = REPOSITORY / "device_tests"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the verification suite against a target (default: the reference app)",
        description="Start an embedded stub server and run the whole verification suite on the "
        "target. Prints a line per test and a table per property, and writes the report folder "
        "(summary, JUnit XML, allure results, artifacts). Exit status: 0 all passed, 1 a check "
        "failed, 3 the infrastructure failed.",
    )
    parser.add_argument(
        "--target", choices=("reference", "android"), default="reference", help="target (default: reference)"
    )
    parser.add_argument(
        "--defect",
        action="append",
        default=[],
        metavar="NAME",
        help="switch on a planted defect in the reference app (repeatable)",
    )
    parser.add_argument(
        "--policy",
        choices=POLICIES,
        default="android",
        help="exclusion boundary for a timer expiring exactly 24 h after the backup (default: android)",
    )
    parser.add_argument("--scenario", metavar="FILE", type=Path, help="scenario file replacing the suite's own")
    parser.add_argument(
        "--corpus",
        metavar="DIR",
        type=Path,
        help="add the round trip of every .binproto frame stream in DIR",
    )
    parser.add_argument(
        "--report",
        metavar="DIR",
        type=Path,
        help="report folder (default: reports/<run id> in the current directory)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PROPERTY",
        help="run only this property's module (e.g. restore, daily_replacement; repeatable)",
    )
    parser.add_argument(
        "-k", dest="select", metavar="EXPRESSION", help="run only the tests matching this pytest -k expression"
    )
    android = parser.add_argument_group("Android target")
    android.add_argument("--serial", metavar="SERIAL", help="adb serial of the device or emulator")
    android.add_argument("--adb-server", metavar="HOST:PORT", help="adb server (default: 127.0.0.1:5037)")
    android.add_argument("--apk", metavar="PATH", type=Path, help="APK to install before the suite")
    android.add_argument("--profile", metavar="NAME", help="app profile (see fixtures/profiles)")
    android.add_argument(
        "--pcap",
        metavar="FILE",
        type=Path,
        help="packet capture that the emulator writes (emulator -tcpdump FILE), scanned by the suite for "
        "canaries and the recovery key",
    )
    parser.set_defaults(handler=run_suite)


def validate_arguments(args: argparse.Namespace) -> None:
    if not SUITE_DIR.is_dir():
        raise UsageError(
            f"the device suite was not found at {SUITE_DIR}; run from a source checkout "
            "installed with `make setup`"
        )
    if args.defect and args.target != "reference":
        raise UsageError("--defect applies to the reference app only; drop it or use --target reference")
    android_only = [name for name in ("serial", "adb_server", "apk", "profile", "pcap") if getattr(args, name)]
    if android_only and args.target != "android":
        flags = ", ".join("--" + name.replace("_", "-") for name in android_only)
        verb = "needs" if len(android_only) == 1 else "need"
        raise UsageError(f"{flags} {verb} --target android")
    for name in args.only:
        if not module_path(name).is_file():
            available = ", ".join(sorted(path.stem.removeprefix("test_") for path in SUITE_DIR.glob("test_*.py")))
            raise UsageError(f"--only {name}: no such property module; available: {available}")
    if args.scenario is not None and not args.scenario.is_file():
        raise UsageError(f"--scenario {args.scenario}: file not found")
    if args.scenario is not None:
        from harness.scenario import validate_scenario_file

        # ScenarioError is a UsageError naming the file, line, column and field.
        validate_scenario_file(args.scenario)
    if args.corpus is not None:
        if not args.corpus.is_dir():
            raise UsageError(f"--corpus {args.corpus}: not a directory; pass the folder of .binproto files")
        if not any(args.corpus.glob("*.binproto")):
            raise UsageError(f"--corpus {args.corpus}: no .binproto files in it")
    if args.pcap is not None:
        check_packet_capture(args.pcap)
    if args.target == "android":
        check_android_options(args)
    if args.defect:
        check_defect_names(args.defect)


def check_packet_capture(path: Path) -> None:
    """Reject a ``--pcap`` file that is missing or not a pcap/pcapng capture, before anything starts."""
    if not path.is_file():
        raise UsageError(f"--pcap {path}: file not found; pass the file the emulator's -tcpdump option writes")
    from harness.android.pcap import read_packets

    # Reading the first packet checks the file header (PcapError is a UsageError naming the file).
    next(read_packets(path), None)


def check_android_options(args: argparse.Namespace) -> None:
    """Reject a profile that does not load or an APK that is not there, before anything starts."""
    from harness.android.profile import load_profile

    # load_profile resolves the name or path and validates the file. Its UsageError names both.
    load_profile(args.profile)
    if args.apk is not None and not args.apk.is_file():
        raise UsageError(f"--apk {args.apk}: file not found; pass the path of the APK to install")


def check_device(args: argparse.Namespace) -> None:
    """Connect once to the adb server and the device, so a wrong --serial or server stops the run early.

    Raises a DeviceError (exit status 3) when the server does not respond or the device is missing
    or offline. The message lists the attached devices.
    """
    from harness.android.device import DEFAULT_ADB_SERVER, connect, select_serials

    serials = select_serials([args.serial] if args.serial else None)
    if len(serials) > 1:
        raise UsageError(f"the Android target drives one device, got {', '.join(serials)}; "
                         "use `backup-harness farm` for several")
    # The suite's plugin uses the same default server when --adb-server is absent.
    device = connect(args.adb_server or DEFAULT_ADB_SERVER, serials[0] if serials else None,
                     command_timeout=10, reconnect_timeout=5)
    log.info("device %s responds on adb server %s", device.serial, args.adb_server or DEFAULT_ADB_SERVER)


def create_report_folder(path: Path) -> None:
    """Create the report folder, or raise UsageError naming it when it cannot be written."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"cannot create report folder {path}: a file of that name exists; "
                         "pass a writable --report DIR")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(
            f"cannot create report folder {path}: {error.strerror or error}; pass a writable --report DIR"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"cannot create report folder {path}: not writable; pass a writable --report DIR")


def known_defects() -> set[str]:
    """Return the defect names the reference app accepts (``--list-defects``)."""
    try:
        listing = subprocess.run(
            [sys.executable, "-m", "reference_app", "--list-defects"],
            cwd=REPOSITORY, capture_output=True, text=True, timeout=60, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as error:
        raise DeviceError(f"the reference app could not list its defects: {error}") from None
    return {line.split()[0] for line in listing.splitlines() if line.strip()}


def check_defect_names(names: list[str]) -> None:
    """Reject unknown defect names before anything starts, listing the valid ones."""
    valid = known_defects()
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise UsageError(
            f"unknown defect {', '.join(map(repr, unknown))}; valid names: {', '.join(sorted(valid))}"
        )


def module_path(name: str) -> Path:
    return SUITE_DIR / f"test_{name.removeprefix('test_').removesuffix('.py').replace(' ', '_')}.py"


def pytest_arguments(args: argparse.Namespace, report_dir: Path, run_id: str, admin_url: str) -> list[str]:
    targets = [str(module_path(name)) for name in args.only] or [str(SUITE_DIR)]
    if args.only and args.corpus is not None:
        targets.append(str(SUITE_DIR / "test_corpus.py"))
    arguments = [
        *targets,
        "--rootdir",
        str(REPOSITORY),
        "-c",
        str(REPOSITORY / "pyproject.toml"),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:hypothesispytest",
        "--harness-report",
        str(report_dir),
        "--run-id",
        run_id,
        "--junitxml",
        str(report_dir / "junit.xml"),
        "--alluredir",
        str(report_dir / "allure-results"),
        "--stub-admin-url",
        admin_url,
        "--target",
        args.target,
        "--policy",
        args.policy,
    ]
    for name in args.defect:
        arguments += ["--defect", name]
    optional = {
        "--scenario": args.scenario,
        "--corpus": args.corpus,
        "--serial": args.serial,
        "--adb-server": args.adb_server,
        "--apk": args.apk,
        "--profile": args.profile,
        "--pcap": args.pcap,
        "-k": args.select,
    }
    for flag, value in optional.items():
        if value is not None:
            arguments += [flag, str(value)]
    return arguments


class ProgressPrinter:
    """pytest plugin of the main job: one line per test, failures with their first line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.total = 0
        self.done = 0
        self.collection_errors: list[str] = []
        self.setup_seconds: dict[str, float] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        # These lines replace pytest's own terminal output; its options stay accepted.
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            config.pluginmanager.unregister(reporter)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            text = str(report.longrepr).strip().splitlines()
            self.collection_errors.append(f"{report.nodeid}: {text[-1] if text else 'collection failed'}")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.total = len(session.items)
        for error in self.collection_errors:
            self.write(f"collection error: {error}")
        self.write(f"running {self.total} tests")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "setup" and report.passed:
            # Module fixtures (the app, the backups) run in the first test's setup.
            self.setup_seconds[report.nodeid] = report.duration
        failed_setup = report.when == "setup" and not report.passed
        failed_teardown = report.when == "teardown" and report.failed
        if report.when != "call" and not failed_setup and not failed_teardown:
            return
        if report.when == "call" or failed_setup:
            self.done += 1
        label = self.label(report)
        name = report.nodeid.split("::", 1)[-1]
        width = len(str(self.total))
        seconds = report.duration + self.setup_seconds.pop(report.nodeid, 0.0)
        self.write(
            f"[{self.done:>{width}}/{self.total}] {label:<5} {property_of(report.nodeid):<17} "
            f"{name}  ({seconds:.2f} s)"
        )
        if not report.passed:
            from harness.pytest_plugin import failure_line

            reason = failure_line(report)
            if reason:
                self.write(f"{'':>{2 * width + 3}} {reason}")

    @staticmethod
    def label(report: pytest.TestReport) -> str:
        if report.passed:
            return "PASS"
        if report.skipped:
            return "SKIP"
        if report.when != "call" or ("infrastructure", "true") in report.user_properties:
            return "ERROR"
        return "FAIL"

    def write(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


def run_suite(args: argparse.Namespace) -> int:
    validate_arguments(args)
    if args.target == "android":
        check_device(args)
    run_id = new_run_id()
    report_dir = (args.report or Path("reports") / run_id).resolve()
    create_report_folder(report_dir)
    started = time.monotonic()
    from harness.stub_process import StubProcess

    print(f"backup-harness run {run_id}: target {args.target}"
          + (f", defects {', '.join(args.defect)}" if args.defect else ""), flush=True)
    with StubProcess.start(data_dir=report_dir / "stub-data") as stub:
        print(f"stub server {stub.url} (admin {stub.admin_url})", flush=True)
        printer = ProgressPrinter(sys.stdout)
        exit_code = pytest.main(pytest_arguments(args, report_dir, run_id, stub.admin_url), plugins=[printer])
    return finish(report_dir, int(exit_code), time.monotonic() - started)


def finish(report_dir: Path, pytest_exit: int, elapsed_s: float) -> int:
    """Print the property table and the report folder; return the job's exit status."""
    summary_path = report_dir / "summary.json"
    if not summary_path.is_file():
        print(f"no summary was written (pytest exit status {pytest_exit})", file=sys.stderr)
        return EXIT_USAGE if pytest_exit in (4, 5) else EXIT_INFRASTRUCTURE
    summary = load_summary(summary_path)
    from harness.report import PropertyRow

    rows = [PropertyRow(**row) for row in summary["properties"]]
    print()
    print(format_table(rows))
    print(f"\nreport: {report_dir}  ({elapsed_s:.1f} s)")
    failed = sum(row.failed for row in rows)
    errors = sum(row.errors for row in rows)
    if pytest_exit == pytest.ExitCode.INTERRUPTED:
        return EXIT_INTERRUPTED
    if failed:
        return EXIT_FAILED
    if errors or pytest_exit not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        return EXIT_INFRASTRUCTURE
    if not rows:
        print("no tests were collected", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_PASSED
