"""``backup-harness emulator``: start an Android emulator for the suite, scan its packet capture.

``emulator start --avd NAME`` runs the SDK's ``emulator`` in the background (no window by
default, optionally ``-tcpdump FILE`` and a snapshot), waits until the device reports
``sys.boot_completed=1`` or the boot timeout passes, and prints the serial. The emulator keeps
running after the command returns; stop it with ``adb -s SERIAL emu kill``.

``emulator scan-pcap FILE`` searches a capture for values (canaries, a recovery key) in
cleartext and exits 1 when one is found.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from harness.android.device import AdbServerAddress, connect
from harness.canaries import encodings
from harness.errors import DeviceError, UsageError

log = logging.getLogger(__name__)

DEFAULT_BOOT_TIMEOUT_S = 600.0
DEFAULT_PORT = 5554
POLL_INTERVAL_S = 1.0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "emulator",
        help="start an Android emulator (SDK) and wait for boot; scan its packet capture",
        description="Wrap the Android SDK's emulator: start an AVD without a window and wait for it "
        "to boot, or scan a packet capture it wrote for values in cleartext.",
    )
    commands = parser.add_subparsers(dest="emulator_command", metavar="COMMAND")
    commands.required = True

    start = commands.add_parser("start", help="start an AVD and wait until it has booted")
    start.add_argument("--avd", required=True, help="name of the AVD (see `emulator -list-avds`)")
    start.add_argument("--port", type=int, default=DEFAULT_PORT,
                       help=f"console port, even, 5554-5682; the serial is emulator-PORT (default: {DEFAULT_PORT})")
    start.add_argument("--tcpdump", type=Path, metavar="FILE", help="write the emulator's network traffic to FILE (pcap)")
    start.add_argument("--snapshot", metavar="NAME", help="boot from this snapshot (default: a cold boot)")
    start.add_argument("--boot-timeout", type=float, default=DEFAULT_BOOT_TIMEOUT_S,
                       help=f"seconds to wait for sys.boot_completed (default: {DEFAULT_BOOT_TIMEOUT_S:g})")
    start.add_argument("--window", action="store_true", help="show the emulator window (default: -no-window)")
    start.add_argument("--emulator", type=Path, metavar="PATH", help="emulator binary (default: from ANDROID_SDK_ROOT, "
                       "ANDROID_HOME or PATH)")
    start.add_argument("--adb-server", metavar="HOST:PORT", help="adb server to watch for the device "
                       "(default: 127.0.0.1:5037, started with the SDK's adb when none answers)")
    start.add_argument("--log", type=Path, metavar="FILE", help="emulator output (default: emulator-PORT.log here)")
    start.add_argument("--emulator-option", action="append", default=[], metavar="ARG",
                       help="extra argument passed to the emulator (repeatable), e.g. --emulator-option=-no-audio")
    start.add_argument("--json", action="store_true", help="print the result as one JSON line")
    start.set_defaults(handler=start_emulator)

    scan = commands.add_parser("scan-pcap", help="search a packet capture for values in cleartext")
    scan.add_argument("capture", type=Path, metavar="FILE", help="pcap or pcapng file (emulator -tcpdump)")
    scan.add_argument("--needle", action="append", default=[], metavar="VALUE",
                      help="a value to search for, in all its encodings (repeatable)")
    scan.add_argument("--needle-file", type=Path, metavar="FILE",
                      help="file with one value per line (a recovery key here stays off the command line)")
    scan.add_argument("--json", action="store_true", help="print the findings as JSON")
    scan.set_defaults(handler=scan_capture)


# start -------------------------------------------------------------------------------------------
def sdk_tool(relative: str, name: str, explicit: Path | None = None) -> Path:
    """Find an SDK binary: the explicit path, then ANDROID_SDK_ROOT, ANDROID_HOME, then PATH."""
    if explicit is not None:
        if not explicit.is_file():
            raise UsageError(f"--emulator {explicit}: file not found")
        return explicit
    for variable in ("ANDROID_SDK_ROOT", "ANDROID_HOME"):
        root = os.environ.get(variable)
        if root and (Path(root) / relative).is_file():
            return Path(root) / relative
    found = shutil.which(name)
    if found:
        return Path(found)
    raise UsageError(f"the Android SDK's {name} was not found: set ANDROID_SDK_ROOT to the SDK folder or put "
                     f"{name} on PATH (install it with `sdkmanager {'emulator' if name == 'emulator' else 'platform-tools'}`)")


def list_avds(emulator: Path) -> list[str]:
    result = subprocess.run([str(emulator), "-list-avds"], capture_output=True, text=True, timeout=60, check=False)
    return [line.strip() for line in result.stdout.splitlines() if line.strip() and not line.startswith("INFO")]


def emulator_command(emulator: Path, args: argparse.Namespace) -> list[str]:
    command = [str(emulator), "-avd", args.avd, "-port", str(args.port), "-no-audio", "-no-boot-anim"]
    if not args.window:
        command.append("-no-window")
    if args.tcpdump is not None:
        command += ["-tcpdump", str(args.tcpdump.resolve())]
    if args.snapshot:
        command += ["-snapshot", args.snapshot]
    else:
        command.append("-no-snapshot-load")
    return command + list(args.emulator_option)


def validate_start(args: argparse.Namespace) -> None:
    if not 5554 <= args.port <= 5682 or args.port % 2:
        raise UsageError(f"--port {args.port}: the emulator console port must be even, 5554-5682")
    if args.boot_timeout <= 0:
        raise UsageError(f"--boot-timeout {args.boot_timeout:g}: give a positive number of seconds")
    if args.tcpdump is not None and not args.tcpdump.resolve().parent.is_dir():
        raise UsageError(f"--tcpdump {args.tcpdump}: the folder does not exist")


def start_emulator(args: argparse.Namespace) -> int:
    validate_start(args)
    emulator = sdk_tool("emulator/emulator", "emulator", args.emulator)

    avds = list_avds(emulator)
    if args.avd not in avds:
        raise UsageError(f"AVD {args.avd!r} not found; available: {', '.join(avds) or 'none'} "
                         "(create one with `avdmanager create avd`)")
    address = AdbServerAddress.parse(args.adb_server) if args.adb_server else None
    if address is None:
        ensure_adb_server()

    serial = f"emulator-{args.port}"
    log_path = (args.log or Path(f"{serial}.log")).resolve()
    command = emulator_command(emulator, args)
    log.info("starting %s", " ".join(command))
    with open(log_path, "ab") as output:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        waited = wait_for_boot(address, serial, process, args.boot_timeout, log_path)
    except DeviceError:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        raise

    result = {"serial": serial, "pid": process.pid, "avd": args.avd, "boot_s": round(waited, 1),
              "tcpdump": str(args.tcpdump.resolve()) if args.tcpdump else None, "log": str(log_path)}
    print(json.dumps(result) if args.json else
          f"{serial} booted in {waited:.0f} s (pid {process.pid}); stop it with `adb -s {serial} emu kill`",
          flush=True)
    return 0


def ensure_adb_server() -> None:
    """Start the local adb server with the SDK's adb when none listens (the emulator registers there)."""
    address = AdbServerAddress.from_environment()
    with socket.socket() as probe:
        probe.settimeout(1)
        if probe.connect_ex((address.host, address.port)) == 0:
            return
    adb = sdk_tool("platform-tools/adb", "adb")
    subprocess.run([str(adb), "start-server"], check=False, timeout=60, capture_output=True)


def wait_for_boot(address: AdbServerAddress | None, serial: str, process: subprocess.Popen, timeout: float,
                  log_path: Path) -> float:
    """Poll until the device reports sys.boot_completed=1; return the seconds waited."""
    started = time.monotonic()
    deadline = started + timeout
    last_state = "not attached"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DeviceError(f"the emulator exited with status {process.returncode} before booting; "
                              f"see {log_path}: {_tail(log_path)}")
        try:
            device = connect(address, serial, command_timeout=10, reconnect_timeout=1)
            if device.getprop("sys.boot_completed") == "1":
                return time.monotonic() - started
            last_state = "attached, still booting"
        except DeviceError as error:
            last_state = str(error)
        time.sleep(POLL_INTERVAL_S)
    raise DeviceError(f"{serial} did not boot within {timeout:g} s (last state: {last_state}); raise "
                      f"--boot-timeout or check {log_path}")


def _tail(path: Path, limit: int = 300) -> str:
    try:
        text = " ".join(path.read_text(errors="replace").split())
    except OSError:
        return "(no output)"
    return text[-limit:] or "(no output)"


# scan-pcap -----------------------------------------------------------------------------------------
def scan_capture(args: argparse.Namespace) -> int:
    from harness.android.pcap import scan_pcap

    values = list(args.needle)
    if args.needle_file is not None:
        try:
            values += [line.strip() for line in args.needle_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        except OSError as error:
            raise UsageError(f"--needle-file {args.needle_file}: {error.strerror}") from None
    if not values:
        raise UsageError("nothing to search for: pass --needle VALUE or --needle-file FILE")
    needles: dict[str, bytes] = {}
    for number, value in enumerate(values, start=1):
        for form, data in encodings(value).items():
            needles[f"value {number} ({form})"] = data
    findings = scan_pcap(args.capture, needles)
    if args.json:
        print(json.dumps([{"flow": finding.flow.describe(), "label": finding.match.label,
                           "container": finding.match.container, "offset": finding.match.offset,
                           "first_packet": finding.first_packet} for finding in findings]))
    else:
        for finding in findings:
            print(finding.describe())
        print(f"{len(findings)} finding(s) in {args.capture}", file=sys.stderr)
    return 1 if findings else 0
