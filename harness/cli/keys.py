"""`backup-harness keys`: make a recovery key, check one, and print every key derived from it.

The derived keys are printed because the user asked for them; they go to standard output only,
never to a log.
"""

from __future__ import annotations

import argparse
import json

from harness.cli.key_options import (
    KEY_SOURCES_HELP,
    add_account_arguments,
    add_recovery_key_arguments,
    read_aci,
    read_forward_secrecy_token,
    read_recovery_key,
)
from harness.errors import UsageError
from harness.keys import (
    BACKUP_KEY_LENGTH,
    SVR_KEY_LABELS,
    derive_backup_id,
    derive_backup_id_private_key,
    derive_backup_id_public_key,
    derive_backup_key,
    derive_local_metadata_key,
    derive_media_encryption_key,
    derive_media_id,
    derive_message_backup_key,
    derive_svr_child_key,
    derive_svr_key,
    derive_thumbnail_transit_key,
    display_recovery_key,
    generate_recovery_key,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "keys",
        help="make a recovery key or derive the backup keys from one",
        description="Make a new recovery key, check one, or print the keys derived from it.",
    )
    commands = parser.add_subparsers(dest="keys_command", metavar="SUBCOMMAND", required=True)

    new = commands.add_parser(
        "new",
        help="print a new random recovery key",
        description="Print a new recovery key: 64 characters from 0-9a-z drawn with the "
        "operating system's CSPRNG. The first line is the canonical lower-case form.",
    )
    new.add_argument(
        "--display", action="store_true", help="also print the grouped upper-case display form on a second line"
    )
    new.set_defaults(handler=run_new)

    validate = commands.add_parser(
        "validate",
        help="check that a recovery key is well formed",
        description="Check a recovery key's length and alphabet and print its canonical form. "
        + KEY_SOURCES_HELP,
    )
    add_recovery_key_arguments(validate)
    validate.set_defaults(handler=run_validate)

    derive = commands.add_parser(
        "derive",
        help="print every key derived from a recovery key and ACI",
        description="Print the backup key, backup id, archive HMAC and AES keys, SVR key and its "
        "children, backup-id key pair and local metadata key, all as lower-case hex. "
        "With --forward-secrecy-token, hmac_key and aes_key are the keys of modern archives; "
        "without it, those of legacy archives. " + KEY_SOURCES_HELP,
    )
    add_account_arguments(
        derive, token_help="32-byte forward-secrecy token as 64 hex digits (modern archives)"
    )
    derive.add_argument(
        "--media-root-key",
        metavar="HEX",
        help="32-byte media root key (BackupInfo.mediaRootBackupKey) as hex; adds the media "
        "backup id and, with --media-name, the media id and media keys",
    )
    derive.add_argument("--media-name", metavar="NAME", help="media name to derive a media id for")
    derive.add_argument("--json", action="store_true", help="print one JSON object")
    derive.set_defaults(handler=run_derive)


def run_new(args: argparse.Namespace) -> int:
    key = generate_recovery_key()
    print(key)
    if args.display:
        print(display_recovery_key(key))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    key = read_recovery_key(args)
    print(f"valid recovery key: {key}")
    return 0


def run_derive(args: argparse.Namespace) -> int:
    recovery_key = read_recovery_key(args)
    aci = read_aci(args)
    token = read_forward_secrecy_token(args)
    media_root_key = _parse_media_root_key(args.media_root_key)
    if args.media_name is not None and media_root_key is None:
        raise UsageError("--media-name needs --media-root-key as well")
    derived = derive_all(recovery_key, aci, token, media_root_key, args.media_name)
    if args.json:
        print(json.dumps(derived, indent=2))
    else:
        width = max(len(name) for name in derived)
        for name, value in derived.items():
            print(f"{name:<{width}}  {value}")
    return 0


def derive_all(
    recovery_key: str,
    aci: bytes,
    token: bytes | None,
    media_root_key: bytes | None = None,
    media_name: str | None = None,
) -> dict[str, str | bool]:
    """Return every derivation as lower-case hex, keyed by name, in hierarchy order."""
    backup_key = derive_backup_key(recovery_key)
    backup_id = derive_backup_id(backup_key, aci)
    message_key = derive_message_backup_key(backup_key, backup_id, token)
    legacy_key = derive_message_backup_key(backup_key, backup_id)
    svr_key = derive_svr_key(recovery_key)
    derived: dict[str, str | bool] = {
        "backup_key": backup_key.hex(),
        "backup_id": backup_id.hex(),
        "forward_secrecy": token is not None,
        "hmac_key": message_key.hmac_key.hex(),
        "aes_key": message_key.aes_key.hex(),
        "legacy_hmac_key": legacy_key.hmac_key.hex(),
        "legacy_aes_key": legacy_key.aes_key.hex(),
        "svr_key": svr_key.hex(),
    }
    for label in SVR_KEY_LABELS:
        derived["svr_" + label.lower().replace(" ", "_")] = derive_svr_child_key(svr_key, label).hex()
    derived["backup_id_private_key"] = derive_backup_id_private_key(backup_key, aci).hex()
    derived["backup_id_public_key"] = derive_backup_id_public_key(backup_key, aci).hex()
    derived["local_metadata_key"] = derive_local_metadata_key(backup_key).hex()
    if media_root_key is not None:
        derived.update(_derive_media(media_root_key, aci, media_name))
    return derived


def _derive_media(media_root_key: bytes, aci: bytes, media_name: str | None) -> dict[str, str]:
    derived = {
        "media_backup_id": derive_backup_id(media_root_key, aci).hex(),
        "media_backup_id_public_key": derive_backup_id_public_key(media_root_key, aci).hex(),
    }
    if media_name is not None:
        media_id = derive_media_id(media_root_key, media_name)
        media_hmac, media_aes = derive_media_encryption_key(media_root_key, media_id)
        thumb_hmac, thumb_aes = derive_thumbnail_transit_key(media_root_key, media_id)
        derived.update(
            media_id=media_id.hex(),
            media_hmac_key=media_hmac.hex(),
            media_aes_key=media_aes.hex(),
            thumbnail_transit_hmac_key=thumb_hmac.hex(),
            thumbnail_transit_aes_key=thumb_aes.hex(),
        )
    return derived


def _parse_media_root_key(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        key = bytes.fromhex(value.strip())
    except ValueError:
        raise UsageError("--media-root-key: not hex; pass the 32-byte key as 64 hex digits") from None
    if len(key) != BACKUP_KEY_LENGTH:
        raise UsageError(
            f"--media-root-key: {len(key)} bytes; pass the 32-byte key as 64 hex digits"
        )
    return key
