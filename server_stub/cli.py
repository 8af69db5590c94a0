"""Command-line options of the stub server, shared by ``python -m server_stub`` and
``backup-harness stub-server``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

from harness.errors import UsageError
from server_stub.config import StubConfig, load_overrides

log = logging.getLogger("server_stub")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address of the app-facing port (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="app-facing port; 0 picks a free one (default 0)")
    parser.add_argument(
        "--admin-port", type=int, default=0, help="admin API port on 127.0.0.1; 0 picks a free one (default 0)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="data directory for records, objects, recordings and keys; reused across restarts "
        "(default: a new temporary directory)",
    )
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a generated self-signed certificate")
    parser.add_argument("--config", type=Path, default=None, help="JSON file of StubConfig settings to override")
    parser.add_argument(
        "--json", action="store_true", help='print one line {"url": ..., "admin_url": ...} on start'
    )


def build_config(args: argparse.Namespace) -> StubConfig:
    overrides = load_overrides(args.config) if args.config else {}
    data_dir = args.data if args.data is not None else Path(tempfile.mkdtemp(prefix="stub-server-"))
    for name, value in (("port", args.port), ("admin_port", args.admin_port)):
        if not 0 <= value <= 65535:
            raise UsageError(f"--{name.replace('_', '-')} {value} is not a port number (0-65535)")
    overrides.update(data_dir=data_dir, host=args.host, port=args.port, admin_port=args.admin_port, tls=args.tls)
    return StubConfig(**overrides)


def run_from_args(args: argparse.Namespace) -> int:
    """Start the stub server, print its URLs, serve until SIGINT or SIGTERM; return 0."""
    from server_stub.server import StubServer

    config = build_config(args)
    logging.getLogger("server_stub").setLevel(logging.INFO)
    from server_stub.server import InvalidHostError

    try:
        server = StubServer(config)
    except InvalidHostError as error:
        raise UsageError(str(error)) from None
    except OSError as error:
        raise UsageError(f"{error}; pick another --port or --admin-port") from None

    def announce() -> None:
        if args.json:
            line = {"url": server.url, "admin_url": server.admin_url, "data_dir": str(config.data_dir)}
            if server.cert_path is not None:
                line["cert_path"] = str(server.cert_path)
            print(json.dumps(line), flush=True)
        else:
            print(f"stub server:  {server.url}", flush=True)
            print(f"admin API:    {server.admin_url}/__harness/", flush=True)
            print(f"data:         {config.data_dir}", flush=True)
            if server.cert_path is not None:
                print(f"certificate:  {server.cert_path}", flush=True)
            print("press Ctrl-C to stop", flush=True)

    server.run(on_ready=announce)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server_stub", description="Run the stub backup server.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return run_from_args(args)
    except UsageError as error:
        print(f"stub server: error: {error}", file=sys.stderr)
        return error.exit_code
