"""`backup-harness check`: run the archive-level rules on one archive.

For a QA engineer holding an archive pulled from a phone: exclusion of disappearing messages,
view-once tombstones, frame-stream structure and, with ``--tier``, the media pointers of that
tier. Exit status 0 means clean, 1 means findings (each listed with its place), 2 means the
archive could not be read (wrong key, truncated, not a backup).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from harness.cli.key_options import (
    add_recovery_key_arguments,
    read_forward_secrecy_token,
    read_recovery_key,
)
from harness.errors import UsageError
from harness.frames import open_frames
from harness.keys import parse_aci
from harness.model import Finding
from harness.reader import scan
from harness.rules import FREE_TIER_MEDIA_DAYS, POLICIES, TIERS, RuleOptions, archive_rules, collect_findings, errors
from harness.summary import BackupSummary

log = logging.getLogger(__name__)

EXIT_CLEAN = 0
EXIT_FINDINGS = 1


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check one archive against the backup rules",
        description="Decrypt one archive (or read a plain .binproto frame stream) and check it "
        "against the archive rules: exclusion of disappearing messages, view-once tombstones, "
        "structure, and media pointers for the tier. Exit status: 0 clean, 1 findings, "
        "2 unreadable.",
    )
    parser.add_argument("archive", type=Path, help="encrypted archive, or a plain .binproto frame stream")
    add_recovery_key_arguments(parser)
    parser.add_argument("--aci", metavar="UUID", help="the account's ACI; required with a recovery key")
    parser.add_argument(
        "--forward-secrecy-token",
        metavar="HEX",
        help="32-byte forward-secrecy token in hex, for archives with the SBACKUP header",
    )
    parser.add_argument(
        "--backup-time",
        metavar="MS",
        type=int,
        help="reference time for the 24 h rules, in epoch milliseconds (default: the "
        "archive's own backupTimeMs)",
    )
    parser.add_argument(
        "--tier", choices=TIERS, help="backup tier whose media rules apply (default: no media rule)"
    )
    parser.add_argument(
        "--policy",
        choices=POLICIES,
        default="android",
        help="boundary for a timer expiring exactly 24 h after the backup: android keeps it, "
        "ios drops it (default: android)",
    )
    parser.add_argument(
        "--free-window-days",
        metavar="DAYS",
        type=int,
        default=None,
        help="free-tier media window in days (default: 45)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.set_defaults(handler=run_check)


def wants_key(args: argparse.Namespace) -> bool:
    """Return whether the file is to be decrypted: any key option or --aci was given."""
    options = (args.recovery_key, args.recovery_key_file, args.aci, args.forward_secrecy_token)
    return any(value is not None for value in options)


def rule_options(args: argparse.Namespace) -> RuleOptions:
    if args.backup_time is not None and args.backup_time <= 0:
        raise UsageError(f"--backup-time {args.backup_time} must be positive epoch milliseconds")
    window = args.free_window_days
    if window is not None and window <= 0:
        raise UsageError(f"--free-window-days {window} must be a positive number of days")
    if window is not None and args.tier != "free":
        raise UsageError("--free-window-days applies to the free tier only; add --tier free")
    return RuleOptions(
        policy=args.policy,
        tier=args.tier,
        backup_time_ms=args.backup_time,
        free_window_days=window or FREE_TIER_MEDIA_DAYS,
    )


def check_archive(
    path: Path,
    options: RuleOptions,
    recovery_key: str | None = None,
    aci: bytes | None = None,
    forward_secrecy_token: bytes | None = None,
) -> tuple[list[Finding], dict[str, Any]]:
    """Read one archive through every rule and return the findings and the archive counts.

    Without a recovery key the file is read as a plain frame stream.
    """
    rules = archive_rules(options)
    summary = BackupSummary()
    with open_frames(path, recovery_key, aci, forward_secrecy_token) as messages:
        scan(messages, [summary, *rules])
    return collect_findings(rules), summary.to_json()


def run_check(args: argparse.Namespace) -> int:
    options = rule_options(args)
    recovery_key = aci = token = None
    if wants_key(args):
        recovery_key = read_recovery_key(args)
        if args.aci is None:
            raise UsageError("decrypting an archive needs the account's ACI as well; pass --aci UUID")
        aci = parse_aci(args.aci)
        token = read_forward_secrecy_token(args)
    findings, counts = check_archive(args.archive, options, recovery_key, aci, token)
    failing = errors(findings)
    if args.json:
        print(json.dumps(result_json(args, findings, counts), indent=2))
    else:
        print_findings(args.archive, findings, counts)
    return EXIT_FINDINGS if failing else EXIT_CLEAN


def result_json(args: argparse.Namespace, findings: list[Finding], counts: dict[str, Any]) -> dict[str, Any]:
    return {
        "archive": str(args.archive),
        "clean": not errors(findings),
        "policy": args.policy,
        "tier": args.tier,
        "findings": [finding.to_json() for finding in findings],
        "counts": {key: value for key, value in counts.items() if key != "findings"},
    }


def print_findings(path: Path, findings: list[Finding], counts: dict[str, Any]) -> None:
    for finding in findings:
        print(f"{finding.severity}: {finding.rule}: {finding.message}")
    error_count = len(errors(findings))
    warning_count = len(findings) - error_count
    scope = f"{counts.get('chat_items', 0)} chat items in {counts.get('chats', 0)} chats"
    verdict = "clean" if not error_count else f"{error_count} finding(s)"
    extra = f", {warning_count} warning(s)" if warning_count else ""
    print(f"{path}: {verdict}{extra} ({scope})")
