"""``backup-harness device-double``: run the adb double with the reference app installed.

It listens on a loopback port as an adb server would, presents one simulated emulator with
the reference app pre-installed (planted defects from ``--defect``), prints one JSON line
``{"adb_server": "127.0.0.1:PORT", "serial": "..."}`` (with ``--json``) and serves until SIGINT
or SIGTERM.
Point the suite at it with
``backup-harness run --target android --adb-server 127.0.0.1:PORT --serial SERIAL``.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import sys
import threading
from types import FrameType

from harness.errors import UsageError

log = logging.getLogger(__name__)

DEFAULT_SERIAL = "emulator-5554"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "device-double",
        help="run a fake adb server with a simulated emulator that hosts the reference app",
        description="Run the adb double: a fake adb server on 127.0.0.1 with one simulated emulator "
        "on which the reference app is installed. Prints one JSON line with the server address and "
        "the serial, then serves until interrupted. Faults for tests are armed through its "
        "host:double-fault service.",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: 0, a free port)")
    parser.add_argument("--serial", default=DEFAULT_SERIAL, help=f"serial of the device (default: {DEFAULT_SERIAL})")
    parser.add_argument("--defect", action="append", default=[], metavar="NAME",
                        help="switch on a planted defect in the hosted reference app (repeatable)")
    parser.add_argument("--policy", choices=("android", "ios"), help="the app's 24-hour boundary rule")
    parser.add_argument("--layout", choices=("modern", "legacy"), help="the app's archive container")
    parser.add_argument("--seed", type=int, help="seed of the app's schedule jitter")
    parser.add_argument("--phone", action="store_true",
                        help="present a production phone (no root, no su) instead of an emulator")
    parser.add_argument("--json", action="store_true",
                        help="print the ready line as JSON (default: adb_server=HOST:PORT serial=SERIAL)")
    parser.set_defaults(handler=run_double)


def known_defects() -> list[str]:
    """Ask the reference app for its defect names (a separate process: the harness never imports it)."""
    result = subprocess.run([sys.executable, "-m", "reference_app", "--list-defects"], capture_output=True,
                            text=True, timeout=60, check=False)
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


def validate(args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a TCP port (0-65535)")
    if not args.serial or any(char.isspace() for char in args.serial):
        raise UsageError(f"--serial {args.serial!r} must be one word, for example {DEFAULT_SERIAL}")
    if args.defect:
        valid = known_defects()
        unknown = [name for name in args.defect if name not in valid]
        if unknown:
            raise UsageError(f"unknown defect {', '.join(map(repr, unknown))}; valid names: {', '.join(valid)}")


def run_double(args: argparse.Namespace) -> int:
    validate(args)
    from harness.android.double import AdbDouble
    from harness.android.double.reference_host import install_reference_app

    try:
        double = AdbDouble(args.port)
    except OSError as error:
        raise UsageError(f"cannot listen on 127.0.0.1:{args.port}: {error.strerror}; pick another --port") from None
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with double:
        device = double.add_device(args.serial, emulator=not args.phone)
        install_reference_app(device, defects=args.defect, policy=args.policy, layout=args.layout, seed=args.seed)
        if args.json:
            print(json.dumps({"adb_server": double.address, "serial": args.serial}), flush=True)
        else:
            print(f"adb_server={double.address} serial={args.serial}", flush=True)
        log.info("adb double serving %s on %s (defects: %s)", args.serial, double.address,
                 ", ".join(args.defect) or "none")
        stop.wait()
    log.info("adb double stopped")
    return 0
