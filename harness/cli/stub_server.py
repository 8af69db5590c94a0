"""``backup-harness stub-server``: run the stub backup server on loopback."""

from __future__ import annotations

import argparse

from server_stub.cli import add_arguments, run_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stub-server",
        help="run the stub backup server (archive API, TUS CDN, admin API)",
        description="Run the stub backup server. It prints the app-facing URL and the admin API "
        "URL, logs each request, and stops cleanly on SIGINT or SIGTERM.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=run_from_args)
