"""libsignal as an oracle for backups: typed calls to the backup ops of the libsignal bridge.

Each function takes file paths (the Node helper streams the file from disk, so large archives
work) and an optional ``Bridge``; without one the process-wide ``shared_bridge()`` is used.
``purpose`` is "remote" (RemoteBackup), "transfer" (DeviceTransfer) or "takeout".
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from libsignal_bridge import Bridge, b64, shared_bridge

PURPOSES = ("remote", "transfer", "takeout")


@dataclasses.dataclass(frozen=True)
class ValidationResult:
    """libsignal's verdict on a backup: ``error`` is its message when ``ok`` is False."""

    ok: bool
    error: str | None
    unknown_fields: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Comparable:
    """libsignal's canonical text of a frame stream (ComparableBackup) and its unknown fields.

    Two backups hold the same content when their texts are equal and both have no unknown
    fields; an unknown field means part of the backup was not compared.
    """

    text: str
    unknown_fields: tuple[str, ...]


def _bridge(bridge: Bridge | None) -> Bridge:
    return bridge if bridge is not None else shared_bridge()


def _check_purpose(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}, got {purpose!r}")
    return purpose


def validate_archive(
    path: str | os.PathLike[str],
    *,
    recovery_key: str | None = None,
    aci: str | None = None,
    backup_key: bytes | None = None,
    backup_id: bytes | None = None,
    forward_secrecy_token: bytes | None = None,
    purpose: str = "remote",
    bridge: Bridge | None = None,
) -> ValidationResult:
    """Validate an encrypted archive with ``MessageBackup.validate``.

    Pass the recovery key and the ACI (UUID text), or the backup key and backup id; add the
    forward-secrecy token for the modern layout. A wrong key is a result (``ok`` False with
    libsignal's "HMAC doesn't match" message), not an exception.
    """
    args: dict[str, object] = {"path": str(Path(path)), "purpose": _check_purpose(purpose)}
    if recovery_key is not None:
        if aci is None:
            raise ValueError("validate_archive needs the ACI with a recovery key")
        args.update(recovery_key=recovery_key, aci=aci)
    elif backup_key is not None and backup_id is not None:
        args.update(backup_key=b64(backup_key), backup_id=b64(backup_id))
    else:
        raise ValueError("validate_archive needs recovery_key and aci, or backup_key and backup_id")
    if forward_secrecy_token is not None:
        args["forward_secrecy_token"] = b64(forward_secrecy_token)
    result = _bridge(bridge).call("validate_archive", **args)
    return ValidationResult(result["ok"], result["error"], tuple(result["unknown_fields"]))


def validate_frames(
    path: str | os.PathLike[str], *, purpose: str = "remote", bridge: Bridge | None = None
) -> ValidationResult:
    """Validate a plain frame stream frame by frame with ``OnlineBackupValidator``.

    This validator logs unknown fields instead of returning them, so ``unknown_fields`` is
    always empty here; use ``comparable_backup`` to see them.
    """
    args = {"path": str(Path(path)), "purpose": _check_purpose(purpose)}
    result = _bridge(bridge).call("validate_frames", **args)
    return ValidationResult(result["ok"], result["error"])


def comparable_backup(
    path: str | os.PathLike[str], *, purpose: str = "remote", bridge: Bridge | None = None
) -> Comparable:
    """Return libsignal's canonical text of a plain frame stream.

    Raises ``libsignal_bridge.LibsignalError`` when libsignal rejects the stream.
    """
    args = {"path": str(Path(path)), "purpose": _check_purpose(purpose)}
    result = _bridge(bridge).call("comparable_backup", **args)
    return Comparable(result["text"], tuple(result["unknown_fields"]))
