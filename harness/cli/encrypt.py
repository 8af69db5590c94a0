"""`backup-harness encrypt`: turn a plain frame stream (.binproto) into an encrypted archive.

Used to make test archives from the Signal backup test corpus or from edited frame streams.
The output is written atomically: a failed run leaves no file behind.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

from harness.archive import (
    MODERN_MAGIC,
    ArchiveWriteResult,
    describe_other_content,
    looks_like_frame_stream,
    write_archive,
)
from harness.cli.key_options import (
    KEY_SOURCES_HELP,
    add_account_arguments,
    read_aci,
    read_forward_secrecy_token,
    read_recovery_key,
)
from harness.errors import UsageError
from harness.keys import FORWARD_SECRECY_TOKEN_LENGTH, MessageBackupKey

log = logging.getLogger(__name__)

READ_CHUNK_SIZE = 1 << 20
# Bytes read to recognise the input: enough for the BackupInfo message at the start.
PROBE_SIZE = 1 << 16


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "encrypt",
        help="encrypt a plain frame stream (.binproto) into a backup archive",
        description="Compress, pad and encrypt a plain frame stream into a backup archive. "
        "By default the archive has the modern layout (SBACKUP header) and its keys are derived "
        "with a forward-secrecy token; without --forward-secrecy-token a random token is made and "
        "printed, and you need it (with the recovery key and ACI) to decrypt the archive. "
        "--legacy writes the layout without header, whose keys use no token. " + KEY_SOURCES_HELP,
    )
    parser.add_argument("plain", type=Path, metavar="PLAIN", help="plain frame stream (.binproto)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="archive file to write")
    add_account_arguments(
        parser,
        token_help="32-byte forward-secrecy token as 64 hex digits (default: a new random token, printed)",
    )
    parser.add_argument(
        "--legacy", action="store_true", help="write the legacy layout (no header, no forward-secrecy token)"
    )
    parser.add_argument(
        "--padding",
        choices=("bucket", "none"),
        default="bucket",
        help="zero padding after the gzip member: libsignal's bucket scheme or none (default: bucket)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.set_defaults(handler=run_encrypt)


def run_encrypt(args: argparse.Namespace) -> int:
    check_paths(args.plain, args.output, args.force)
    check_plain_frame_stream(args.plain)
    token, generated = choose_token(args)
    key = MessageBackupKey.from_recovery_key(read_recovery_key(args), read_aci(args), token)

    result = write_archive(
        read_chunks(args.plain),
        args.output,
        key,
        layout="legacy" if args.legacy else "modern",
        padding=args.padding,
        overwrite=args.force,
    )

    if args.json:
        print(json.dumps(result_json(result, token, generated), indent=2))
        return 0
    print(
        f"wrote {result.path}: {result.layout} archive, {result.file_size} bytes "
        f"from {result.plaintext_length} bytes of frames"
    )
    if generated:
        print(f"forward-secrecy token (needed to decrypt, keep it with the recovery key): {token.hex()}")
    return 0


def choose_token(args: argparse.Namespace) -> tuple[bytes | None, bool]:
    """Return the forward-secrecy token to use and whether it was generated here."""
    token = read_forward_secrecy_token(args)
    if args.legacy:
        if token is not None:
            raise UsageError("--legacy archives use no forward-secrecy token; drop --forward-secrecy-token")
        return None, False
    if token is None:
        return secrets.token_bytes(FORWARD_SECRECY_TOKEN_LENGTH), True
    return token, False


def result_json(result: ArchiveWriteResult, token: bytes | None, generated: bool) -> dict[str, object]:
    return {
        "path": str(result.path),
        "layout": result.layout,
        "file_size": result.file_size,
        "plaintext_length": result.plaintext_length,
        "compressed_length": result.compressed_length,
        "forward_secrecy_token": token.hex() if token is not None else None,
        "forward_secrecy_token_generated": generated,
    }


def check_paths(plain: Path, output: Path, force: bool) -> None:
    """Raise UsageError when PLAIN is unreadable, OUT is PLAIN, or OUT exists without --force."""
    if not plain.exists():
        raise UsageError(f"{plain}: file not found")
    if not plain.is_file():
        raise UsageError(f"{plain}: not a regular file")
    if output.exists() and output.resolve() == plain.resolve():
        raise UsageError(f"{output}: the output must not be the input file")
    if output.exists() and not force:
        raise UsageError(f"{output}: already exists; pass --force to overwrite it")
    if output.is_dir():
        raise UsageError(f"{output}: is a directory; pass a file path")


def check_plain_frame_stream(plain: Path) -> None:
    """Raise UsageError unless PLAIN starts like a frame stream (a cheap check, not validation)."""
    try:
        with open(plain, "rb") as file:
            head = file.read(PROBE_SIZE)
    except PermissionError:
        raise UsageError(f"{plain}: permission denied") from None
    if not head:
        raise UsageError(f"{plain}: the file is empty; expected a plain frame stream (.binproto)")
    if head.startswith(MODERN_MAGIC[:7]):
        raise UsageError(f"{plain}: already an encrypted archive (it starts with SBACKUP)")
    if looks_like_frame_stream(head):
        return
    other = describe_other_content(head)
    detail = f"it looks like {other}" if other else "it may already be encrypted (a legacy archive) or be another file"
    raise UsageError(
        f"{plain}: not a plain frame stream: it does not start with a varint-delimited "
        f"BackupInfo message; {detail}"
    )


def read_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as file:
        while chunk := file.read(READ_CHUNK_SIZE):
            yield chunk
