"""Command-line options that name a recovery key, an ACI and a forward-secrecy token.

Shared by the subcommands that take keys. The recovery key can come from ``--recovery-key``,
``--recovery-key-file`` or the environment variable BACKUP_HARNESS_RECOVERY_KEY, so a user
need not put it on a command line, where other local users can read it in the process list.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.errors import UsageError
from harness.keys import (
    MessageBackupKey,
    normalize_recovery_key,
    parse_aci,
    parse_forward_secrecy_token,
)

RECOVERY_KEY_ENV = "BACKUP_HARNESS_RECOVERY_KEY"
# Far more than any recovery key entry needs; a larger file is a wrong path.
MAX_KEY_FILE_BYTES = 4096

KEY_SOURCES_HELP = (
    f"The recovery key is read from --recovery-key, else --recovery-key-file, else the "
    f"environment variable {RECOVERY_KEY_ENV}. Spaces, dashes and letter case do not matter, "
    "so the grouped display form works too."
)


def add_recovery_key_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --recovery-key and --recovery-key-file."""
    parser.add_argument(
        "--recovery-key",
        metavar="KEY",
        help="recovery key (64 characters); '-' reads one line from standard input. Prefer "
        f"--recovery-key-file or {RECOVERY_KEY_ENV}: a command line is visible to other users",
    )
    parser.add_argument(
        "--recovery-key-file",
        metavar="PATH",
        type=Path,
        help="file whose first line is the recovery key",
    )


def add_account_arguments(parser: argparse.ArgumentParser, *, token_help: str) -> None:
    """Add the recovery key options, --aci and --forward-secrecy-token."""
    add_recovery_key_arguments(parser)
    parser.add_argument(
        "--aci", metavar="UUID", required=True, help="the account's ACI, e.g. 11111111-1111-1111-1111-111111111111"
    )
    parser.add_argument("--forward-secrecy-token", metavar="HEX", help=token_help)


def read_recovery_key(args: argparse.Namespace) -> str:
    """Return the canonical recovery key from the options or the environment.

    Raises UsageError when none is given, when both options are given, or when the file
    cannot be read, and RecoveryKeyError when the key breaks a format rule.
    """
    option = getattr(args, "recovery_key", None)
    key_file = getattr(args, "recovery_key_file", None)
    if option is not None and key_file is not None:
        raise UsageError("pass either --recovery-key or --recovery-key-file, not both")
    if option == "-":
        entry = sys.stdin.readline()
        if not entry.strip():
            raise UsageError("--recovery-key -: standard input is empty; pipe the recovery key in")
    elif option is not None:
        entry = option
    elif key_file is not None:
        entry = _read_key_file(key_file)
    elif os.environ.get(RECOVERY_KEY_ENV):
        entry = os.environ[RECOVERY_KEY_ENV]
    else:
        raise UsageError(
            f"missing recovery key: pass --recovery-key-file PATH, --recovery-key KEY or set {RECOVERY_KEY_ENV}"
        )
    return normalize_recovery_key(entry)


def _read_key_file(path: Path) -> str:
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"--recovery-key-file {path}: file not found") from None
    except IsADirectoryError:
        raise UsageError(f"--recovery-key-file {path}: is a directory") from None
    except PermissionError:
        raise UsageError(f"--recovery-key-file {path}: permission denied") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise UsageError(
            f"--recovery-key-file {path}: larger than {MAX_KEY_FILE_BYTES} bytes; expected a file "
            "holding only the recovery key"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"--recovery-key-file {path}: not UTF-8 text") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise UsageError(f"--recovery-key-file {path}: the first line is empty")
    return lines[0]


def read_aci(args: argparse.Namespace) -> bytes:
    return parse_aci(args.aci)


def read_forward_secrecy_token(args: argparse.Namespace) -> bytes | None:
    value = getattr(args, "forward_secrecy_token", None)
    if value is None:
        return None
    try:
        return parse_forward_secrecy_token(value)
    except UsageError as error:
        raise UsageError(f"--forward-secrecy-token: {error}") from None


def read_message_backup_key(args: argparse.Namespace) -> MessageBackupKey:
    """Derive the archive keys from the recovery key, --aci and --forward-secrecy-token."""
    recovery_key = read_recovery_key(args)
    return MessageBackupKey.from_recovery_key(recovery_key, read_aci(args), read_forward_secrecy_token(args))
