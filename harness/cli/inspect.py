"""`backup-harness inspect`: decode one archive or plain frame stream, summarise it and check it
against libsignal's validity rules.

Exit status: 0 when the stream decodes and has no findings, 1 when it decodes but has findings,
2 when it cannot be read (wrong key, truncated or corrupt archive, not a backup, bad options).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from harness.archive import describe_inflate_limit
from harness.cli.key_options import (
    KEY_SOURCES_HELP,
    add_recovery_key_arguments,
    read_forward_secrecy_token,
    read_recovery_key,
)
from harness.errors import UsageError
from harness.inspection import inspect_file
from harness.keys import parse_aci
from harness.validity import Purpose

EXIT_VALID = 0
EXIT_FINDINGS = 1

PURPOSES = {
    "remote": Purpose.REMOTE_BACKUP,
    "transfer": Purpose.DEVICE_TRANSFER,
    "takeout": Purpose.TAKEOUT_EXPORT,
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="summarise an archive or plain frame stream and check libsignal's validity rules",
        description="Decode a backup and print what it contains (frames, chats, chat items by kind, "
        "view-once and disappearing items, attachments by tier) and every libsignal validity "
        "finding. Without a recovery key FILE is read as a plain frame stream (.binproto); with "
        "one it is decrypted as an archive, which also needs --aci (and "
        "--forward-secrecy-token for the modern layout). " + KEY_SOURCES_HELP + " Exit status: "
        "0 valid, 1 decoded with findings, 2 cannot be read.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="encrypted archive or plain frame stream")
    add_recovery_key_arguments(parser)
    parser.add_argument(
        "--aci", metavar="UUID", help="the account's ACI, e.g. 11111111-1111-1111-1111-111111111111"
    )
    parser.add_argument(
        "--forward-secrecy-token",
        metavar="HEX",
        help="32-byte forward-secrecy token as 64 hex digits (modern-layout archives)",
    )
    parser.add_argument(
        "--purpose",
        choices=tuple(PURPOSES),
        default="remote",
        help="backup purpose for the expiry and view-once rules: remote backup, device transfer "
        "or takeout export (default: remote)",
    )
    parser.add_argument(
        "--max-inflated-bytes",
        type=int,
        metavar="N",
        help=f"largest decompressed frame stream to accept, in bytes (by default {describe_inflate_limit()})",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.set_defaults(handler=run_inspect)


def _wants_key(args: argparse.Namespace) -> bool:
    return any(
        value is not None
        for value in (args.recovery_key, args.recovery_key_file, args.aci, args.forward_secrecy_token)
    )


def run_inspect(args: argparse.Namespace) -> int:
    if args.max_inflated_bytes is not None and args.max_inflated_bytes <= 0:
        raise UsageError(f"--max-inflated-bytes {args.max_inflated_bytes} must be a positive number of bytes")
    recovery_key = aci = token = None
    if _wants_key(args):
        recovery_key = read_recovery_key(args)
        if args.aci is None:
            raise UsageError("decrypting an archive needs the account's ACI as well; pass --aci UUID")
        aci = parse_aci(args.aci)
        token = read_forward_secrecy_token(args)
    summary = inspect_file(
        args.file,
        recovery_key=recovery_key,
        aci=aci,
        forward_secrecy_token=token,
        purpose=PURPOSES[args.purpose],
        max_inflated_bytes=args.max_inflated_bytes,
    )
    result = summary.to_json()
    if args.json:
        json.dump({"file": str(args.file), "purpose": args.purpose, **result}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_summary(args.file, result)
    return EXIT_FINDINGS if result["findings"] else EXIT_VALID


def _counts(mapping: dict[str, int]) -> str:
    return ", ".join(f"{name.replace('_', ' ')} {count}" for name, count in mapping.items()) or "none"


def print_summary(path: Path, result: dict[str, Any]) -> None:
    """Print the human-readable summary: one topic per line, then every finding."""
    attachments = result["attachments"]
    print(f"{path}")
    print(
        f"  backup info: version {result['version']}, backup time {result['backup_time_ms']} ms, "
        f"app {result['current_app_version']!r} (first {result['first_app_version']!r})"
    )
    print(
        f"  frames {result['frames']}: accounts {result['accounts']}, recipients "
        f"{result['recipients']} ({_counts(result['recipients_by_kind'])}), chats {result['chats']}, "
        f"chat items {result['chat_items']}"
    )
    print(f"  chat items by kind: {_counts(result['chat_items_by_kind'])}")
    print(
        f"  view-once {result['view_once']} ({result['view_once_with_attachment']} with attachment), "
        f"disappearing {result['disappearing']}"
    )
    print(
        f"  attachments {attachments['total']}: media tier {attachments['media']}, transit tier "
        f"{attachments['transit']}, no content {attachments['none']}"
    )
    if result["other_frames"]:
        print(f"  other frames: {_counts(result['other_frames'])}")
    print(f"  unknown fields {result['unknown_fields']}")
    findings = result["findings"]
    if not findings:
        print("  valid: no findings")
        return
    print(f"  findings {len(findings)}:")
    for finding in findings:
        print(f"    [{finding['rule']}] {finding['message']}")
