"""``backup-harness farm``: run the suite on several Android devices in parallel.

Each device gets its own ``backup-harness run --target android`` process, hence its own stub
server and its own report folder (``REPORT/<serial>/``). Output lines are prefixed with the
serial. When every run has ended, ``REPORT/farm-summary.json`` and a table give the outcome per
device. The exit status is 1 when a check failed on any device, 0 when all passed, and
otherwise the first non-zero status of a device run (3 for infrastructure errors).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from harness.android.device import AdbServerAddress, HarnessAdbClient, list_devices, select_serials
from harness.errors import UsageError

log = logging.getLogger(__name__)

EXIT_FAILED = 1


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "farm",
        help="run the suite on several Android devices in parallel (one stub and report per device)",
        description="Run `backup-harness run --target android` on each device at the same time, each with "
        "its own stub server and report folder, then print and write a combined summary. Devices: "
        "--serial (repeatable or comma separated), else ANDROID_SERIAL or DEVICEFARM_DEVICE_UDID, else "
        "every online device of the adb server.",
    )
    parser.add_argument("--serial", action="append", default=[], metavar="SERIAL", help="device serial (repeatable)")
    parser.add_argument("--adb-server", metavar="HOST:PORT", help="adb server (default: 127.0.0.1:5037)")
    parser.add_argument("--apk", type=Path, metavar="PATH", help="APK to install on every device")
    parser.add_argument("--profile", metavar="NAME", help="app profile (see fixtures/profiles)")
    parser.add_argument("--report", type=Path, metavar="DIR", help="report folder (default: reports/farm-<time>)")
    parser.add_argument("--parallel", type=int, metavar="N", help="runs at the same time (default: one per device)")
    parser.add_argument("--only", action="append", default=[], metavar="PROPERTY",
                        help="run only this property's module (repeatable)")
    parser.add_argument("-k", dest="select", metavar="EXPRESSION", help="pytest -k expression passed to each run")
    parser.set_defaults(handler=run_farm)


def resolve_devices(args: argparse.Namespace) -> list[str]:
    serials = select_serials(args.serial)
    if serials:
        return serials
    address = AdbServerAddress.parse(args.adb_server) if args.adb_server else AdbServerAddress.from_environment()
    online = [device.serial for device in list_devices(HarnessAdbClient(address.host, address.port))
              if device.state == "device"]
    if not online:
        raise UsageError(f"no online device on adb server {address}; pass --serial or start emulators")
    return online


def run_command(args: argparse.Namespace, serial: str, report: Path) -> list[str]:
    command = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())",
               "run", "--target", "android", "--serial", serial, "--report", str(report)]
    for flag, value in (("--adb-server", args.adb_server), ("--apk", args.apk), ("--profile", args.profile),
                        ("-k", args.select)):
        if value is not None:
            command += [flag, str(value)]
    for module in args.only:
        command += ["--only", module]
    return command


def run_device(args: argparse.Namespace, serial: str, report: Path, lock: threading.Lock) -> dict[str, Any]:
    """Run the suite on one device; stream its output with a prefix; return its outcome."""
    report.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(report / "run.log", "w", encoding="utf-8") as transcript:
        process = subprocess.Popen(run_command(args, serial, report), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
        assert process.stdout is not None
        for line in process.stdout:
            transcript.write(line)
            with lock:
                print(f"[{serial}] {line.rstrip()}", flush=True)
        exit_code = process.wait()
    return {"serial": serial, "exit": exit_code, "report": str(report), "seconds": round(time.monotonic() - started, 1),
            "counts": _counts(report / "summary.json")}


def _counts(summary_path: Path) -> dict[str, int]:
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    counts: dict[str, int] = {}
    for test in summary.get("tests", []):
        counts[test.get("outcome", "unknown")] = counts.get(test.get("outcome", "unknown"), 0) + 1
    return counts


def combined_exit(results: list[dict[str, Any]]) -> int:
    codes = [result["exit"] for result in results]
    if EXIT_FAILED in codes:
        return EXIT_FAILED
    return next((code for code in codes if code != 0), 0)


def run_farm(args: argparse.Namespace) -> int:
    if args.parallel is not None and args.parallel < 1:
        raise UsageError(f"--parallel {args.parallel}: give at least 1")
    if args.apk is not None and not args.apk.is_file():
        raise UsageError(f"--apk {args.apk}: file not found")
    serials = resolve_devices(args)
    report = (args.report or Path("reports") / time.strftime("farm-%Y%m%d-%H%M%S")).resolve()
    report.mkdir(parents=True, exist_ok=True)
    print(f"backup-harness farm: {len(serials)} device(s): {', '.join(serials)}; report {report}", flush=True)
    lock = threading.Lock()
    with concurrent.futures.ThreadPoolExecutor(args.parallel or len(serials)) as pool:
        futures = [pool.submit(run_device, args, serial, report / _folder(serial), lock) for serial in serials]
        results = [future.result() for future in futures]
    exit_code = combined_exit(results)
    (report / "farm-summary.json").write_text(json.dumps({"devices": results, "exit": exit_code}, indent=2) + "\n",
                                              encoding="utf-8")
    print()
    print(f"{'device':<24} {'exit':>4} {'passed':>6} {'failed':>6} {'error':>6} {'skipped':>7} {'seconds':>8}")
    for result in results:
        counts = result["counts"]
        print(f"{result['serial']:<24} {result['exit']:>4} {counts.get('passed', 0):>6} {counts.get('failed', 0):>6} "
              f"{counts.get('error', 0):>6} {counts.get('skipped', 0):>7} {result['seconds']:>8}")
    print(f"\nfarm summary: {report / 'farm-summary.json'}")
    return exit_code


def _folder(serial: str) -> str:
    return "".join(char if char.isalnum() or char in "-_." else "_" for char in serial)
