"""Start the reference app: ``python -m reference_app --data DIR [--defect NAME ...] [--json]``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
from pathlib import Path

from reference_app.app import LAYOUTS, POLICIES, App
from reference_app.applog import install
from reference_app.clock import DeviceClock, InvalidTimezoneError
from reference_app.control import ControlServer
from reference_app.defects import Defects, UnknownDefectError, describe_all
from reference_app.device import DeviceState
from reference_app.keystore import KeyStoreError

log = logging.getLogger("reference_app.app")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reference_app",
        description="A Signal-like client whose backups the harness tests, driven through a loopback control API.",
    )
    parser.add_argument("--data", type=Path, help="app data directory (created if missing)")
    parser.add_argument("--defect", action="append", default=[], metavar="NAME", help="switch on a planted defect (repeatable)")
    parser.add_argument("--list-defects", action="store_true", help="print the planted defects and exit")
    parser.add_argument(
        "--policy", choices=POLICIES, default="android",
        help="whose exclusion rules to follow: 24-hour boundary and timer repair (default: android)",
    )
    parser.add_argument("--layout", choices=LAYOUTS, default="modern", help="archive container (default: modern)")
    parser.add_argument("--log", type=Path, help="app log file (default: DATA.log next to the data directory)")
    parser.add_argument("--device-file", type=Path, help="device state file (default: DATA.device.json)")
    parser.add_argument("--port", type=int, default=0, help="control port on 127.0.0.1 (default: a free port)")
    parser.add_argument("--seed", type=int, help="seed of the schedule jitter (default: random)")
    parser.add_argument("--json", action="store_true", help="print the control URL as one JSON line when ready")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_defects:
        print(describe_all(), flush=True)
        return 0
    if args.data is None:
        print("error: --data DIR is required (the app's data directory)", file=sys.stderr)
        return 2
    try:
        defects = Defects(args.defect)
    except UnknownDefectError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        print(f"error: --port {args.port} is not a TCP port (0-65535)", file=sys.stderr)
        return 2
    data_dir = args.data.resolve()
    if data_dir.exists() and not data_dir.is_dir():
        print(f"error: --data {data_dir} exists and is not a directory", file=sys.stderr)
        return 2
    log_path = (args.log or data_dir.with_name(data_dir.name + ".log")).resolve()
    device_file = (args.device_file or data_dir.with_name(data_dir.name + ".device.json")).resolve()
    try:
        clock = DeviceClock(DeviceState(device_file))
    except (ValueError, InvalidTimezoneError) as error:
        print(f"error: device file {device_file} is invalid: {error}", file=sys.stderr)
        return 2
    handler = install(log_path, clock)
    try:
        app = App(data_dir, defects=defects, policy=args.policy, layout=args.layout, clock=clock, seed=args.seed)
    except (KeyStoreError, ValueError, OSError, sqlite3.DatabaseError) as error:
        print(f"error: cannot open the app data in {data_dir}: {error}", file=sys.stderr)
        handler.close()
        return 2
    try:
        server = ControlServer(app, handler, args.port)
    except OSError as error:
        print(f"error: cannot listen on 127.0.0.1:{args.port}: {error}", file=sys.stderr)
        app.close()
        return 2
    app.start()
    stop = server.shutdown_requested
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, name="control", daemon=True).start()
    log.info("app started pid=%d defects=%s", os.getpid(), ",".join(defects.names) or "none")
    ready = {"control_url": server.url, "pid": os.getpid(), "log": str(log_path), "defects": list(defects.names)}
    print(json.dumps(ready) if args.json else f"control_url={server.url}", flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()
    app.close()
    log.info("app stopped")
    handler.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
