"""Helpers of the device suite: reading what the stub stored, scenario steps, expected fates.

Everything here reaches the target only through ``harness.targets.base.Target`` plus the two
scenario actions a multi-day test needs (``add_messages`` and ``delete_message``). It reaches
the server only through the stub's admin API.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from harness import keys
from harness.archive import read_header, write_archive
from harness.canaries import Match, encodings, scan_for
from harness.frames import encode_message, open_frames
from harness.model import BackupInfoRecord, ChatItemRecord, ChatRecord, Finding, RecipientRecord
from harness.reader import scan
from harness.rules import RuleOptions, archive_rules, collect_findings, errors
from harness.scenario import load_scenario, resolve
from harness.summary import BackupSummary
from harness.targets.base import BackupResult, Target
from harness.traffic import RecordedRequest

SUITE_DIR = Path(__file__).resolve().parent
REPOSITORY = SUITE_DIR.parent
SCENARIOS = REPOSITORY / "fixtures" / "scenarios"
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
# How long a scheduled job may take to report its end after a clock jump.
JOB_TIMEOUT_S = 60.0


# Scenarios ---------------------------------------------------------------------------------


def scenario_path(name: str, override: Path | None = None) -> Path:
    """Return the scenario file: ``--scenario`` when given, else the suite's own by name."""
    if override is not None:
        return override
    local = SUITE_DIR / "scenarios" / f"{name}.yaml"
    return local if local.is_file() else SCENARIOS / f"{name}.yaml"


def resolved_scenario(name: str, now_ms: int | None, override: Path | None = None) -> dict[str, Any]:
    """Load and resolve a scenario, with every message list expanded into a plain list."""
    resolved = resolve(load_scenario(scenario_path(name, override)), now_ms)
    result = dict(resolved)
    result["messages"] = list(resolved["messages"])
    result["steps"] = [
        {**step, "messages": list(step["messages"])} if step["action"] == "add_messages" else dict(step)
        for step in resolved["steps"]
    ]
    return result


def messages_by_id(resolved: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {message["id"]: message for message in resolved["messages"]}
    for step in resolved["steps"]:
        for message in step.get("messages", []):
            found[message["id"]] = message
    return found


def require_action(target: Target, name: str) -> Any:
    """Return a scenario action of the target, or skip when the target does not offer it."""
    action = getattr(target, name, None)
    if action is None:
        pytest.skip(f"target {target.name} has no {name} action")
    return action


# Backups ------------------------------------------------------------------------------------


def back_up(target: Target, what: str = "backup") -> BackupResult:
    """Run a backup and fail the test with the app's own error when it does not finish."""
    result = target.back_up_now()
    assert result.ok, f"{what} failed on the target: {result.error}"
    return result


def wait_for_backup(target: Target, since: Any) -> str:
    """Wait for the end of a backup the target started on its own; return the log line."""
    line = target.wait_for_log(r"backup (uploaded|failed)", since, JOB_TIMEOUT_S)
    assert "backup uploaded" in line.text, f"scheduled backup failed: {line.text}"
    return line.text


def aci_bytes(aci: str) -> bytes:
    return uuid.UUID(aci).bytes


def backup_id_of(recovery_key: str, aci: str) -> bytes:
    backup_key = keys.derive_backup_key(keys.normalize_recovery_key(recovery_key))
    return keys.derive_backup_id(backup_key, aci_bytes(aci))


def media_backup_id_of(media_root_key: bytes, aci: str) -> bytes:
    """Return the media backup id: derived like the messages one, from the media root key."""
    return keys.derive_backup_id(media_root_key, aci_bytes(aci))


def archive_object_path(stub: Any, recovery_key: str, aci: str) -> str | None:
    return stub.admin.message_backup_path(backup_id_of(recovery_key, aci))


def download_archive(stub: Any, recovery_key: str, aci: str, destination: Path) -> Path:
    path = archive_object_path(stub, recovery_key, aci)
    assert path is not None, "the server has no message backup for this recovery key"
    assert stub.admin.object_exists(path), f"the server has a backup record but no archive at {path}"
    return stub.admin.download_object(path, destination)


# Reading archives ------------------------------------------------------------------------------


class Collector:
    """Visitor that keeps every record of a (small) test archive."""

    def __init__(self) -> None:
        self.info: BackupInfoRecord | None = None
        self.recipients: list[RecipientRecord] = []
        self.chats: list[ChatRecord] = []
        self.items: list[ChatItemRecord] = []

    def backup_info(self, record: BackupInfoRecord) -> None:
        self.info = record

    def recipient(self, record: RecipientRecord) -> None:
        self.recipients.append(record)

    def chat(self, record: ChatRecord) -> None:
        self.chats.append(record)

    def chat_item(self, record: ChatItemRecord) -> None:
        self.items.append(record)


@dataclasses.dataclass
class ArchiveView:
    """One decrypted archive: its bytes, records, rule findings and counts."""

    path: Path
    data: bytes
    layout: str
    info: BackupInfoRecord
    items: list[ChatItemRecord]
    findings: list[Finding]
    summary: dict[str, Any]

    iv_offset: int
    ciphertext_offset: int
    mac_offset: int

    @property
    def iv(self) -> bytes:
        return self.data[self.iv_offset : self.ciphertext_offset]

    @property
    def ciphertext(self) -> bytes:
        return self.data[self.ciphertext_offset : self.mac_offset]

    def item_by_sent(self) -> dict[int, ChatItemRecord]:
        return {item.date_sent: item for item in self.items}

    def errors(self) -> list[Finding]:
        return errors(self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "size": len(self.data),
            "sha256": hashlib.sha256(self.data).hexdigest(),
            "backup_time_ms": self.info.backup_time_ms,
            "summary": {key: value for key, value in self.summary.items() if key != "findings"},
            "findings": [finding.to_json() for finding in self.findings],
            "items": [
                {"location": item.location(), "kind": item.kind, "direction": item.direction,
                 "expires_in_ms": item.expires_in_ms, "expire_start_ms": item.expire_start_ms,
                 "attachments": len(item.attachments)}
                for item in self.items
            ],
        }


def container_parts(path: Path) -> tuple[bytes, bytes]:
    """Return the IV and the ciphertext of an archive file, read from its layout alone."""
    header = read_header(path)
    data = path.read_bytes()
    return data[header.iv_offset : header.ciphertext_offset], data[header.ciphertext_offset : header.mac_offset]


def forward_secrecy_token(target: Target, path: Path, recovery_key: str) -> bytes | None:
    """Return the token that decrypts a modern archive, or None for the legacy layout.

    A phone keeps the token in SVR-B, which the stub does not run. A target that can hand it
    over implements ``forward_secrecy_token(path, recovery_key)``; for the reference app the
    token is recovered from the archive header with its SVR-B stand-in.
    """
    header = read_header(path)
    if header.layout != "modern":
        return None
    provider = getattr(target, "forward_secrecy_token", None)
    if provider is not None:
        return provider(path, recovery_key)
    if target.name == "reference":
        # NOTE: the reference app's SVR-B stand-in lives in the app; the suite reuses it here
        # because no server-side enclave exists to ask.
        from reference_app.forward_secrecy import recover_token

        return recover_token(keys.derive_backup_key(keys.normalize_recovery_key(recovery_key)), header.metadata)
    pytest.skip(f"target {target.name} cannot hand over the forward-secrecy token of a modern archive")


def read_archive(
    target: Target,
    path: Path,
    recovery_key: str,
    aci: str,
    *,
    policy: str = "android",
    tier: str | None = None,
) -> ArchiveView:
    """Decrypt an archive the target uploaded and run the archive rules over it."""
    normalized = keys.normalize_recovery_key(recovery_key)
    token = forward_secrecy_token(target, path, recovery_key)
    rules = archive_rules(RuleOptions(policy=policy, tier=tier))
    collector = Collector()
    summary = BackupSummary()
    with open_frames(path, normalized, aci_bytes(aci), token) as messages:
        scan(messages, [collector, summary, *rules])
    assert collector.info is not None
    header = read_header(path)
    return ArchiveView(
        path=path,
        data=path.read_bytes(),
        layout=header.layout,
        iv_offset=header.iv_offset,
        ciphertext_offset=header.ciphertext_offset,
        mac_offset=header.mac_offset,
        info=collector.info,
        items=collector.items,
        findings=collect_findings(rules),
        summary=summary.to_json(),
    )


# Chat item kind of a scenario message kind.
ITEM_KIND_OF = {"text": "standard", "media": "standard", "view_once": "view_once", "sticker": "sticker", "update": "update"}


def find_item(items: Iterable[ChatItemRecord], message: dict[str, Any]) -> ChatItemRecord | None:
    """Return the chat item of a resolved scenario message: by text, else by sent time and kind."""
    kind = "remote_deleted" if message["deleted"] else ITEM_KIND_OF.get(message["kind"], message["kind"])
    for item in items:
        if message["text"] and not message["deleted"]:
            if item.text is not None and message["text"] in item.text:
                return item
        elif item.date_sent == message["sent_ms"] and item.kind == kind:
            return item
    return None


def describe_findings(findings: Iterable[Finding], limit: int = 5) -> str:
    """Render findings for an assertion message: one per line, the first ``limit`` of them."""
    found = list(findings)
    lines = [finding.message for finding in found[:limit]]
    if len(found) > limit:
        lines.append(f"... and {len(found) - limit} more")
    return "\n".join(lines)


# Expected fate of a scenario message ----------------------------------------------------------


def timer_start(message: dict[str, Any], policy: str) -> int | None:
    """Return the start of a message's timer as the exporter writes it (Android repairs it)."""
    if message["expire_start_ms"] is not None:
        return message["expire_start_ms"]
    if policy != "android":
        return None
    if timer_should_have_started(message):
        return message["received_ms"]
    return None


def timer_should_have_started(message: dict[str, Any]) -> bool:
    """Return whether a message's timer counts as started: read incoming, or settled outgoing."""
    if message["direction"] == "incoming":
        return bool(message["read"])
    return message["direction"] == "outgoing" and message["status"] not in ("pending", "failed")


def rejected_unstarted(message: dict[str, Any], policy: str) -> bool:
    """Return whether ``policy``'s exporter keeps a timer that libsignal rejects as not started.

    libsignal's validation rejects a read incoming or settled outgoing message whose timer
    never started. Android's exporter starts such a timer at the time received, but iOS keeps
    it unstarted, so an iOS backup that contains such a message fails validation.
    """
    timer = message["expires_in_ms"]
    if not timer or timer <= DAY_MS or message["expire_start_ms"] is not None:
        return False
    return timer_should_have_started(message) and timer_start(message, policy) is None


def expected_fate(message: dict[str, Any], backup_time_ms: int, policy: str) -> str:
    """Return "kept", "excluded" or "tombstone" for a resolved scenario message.

    A message deleted for everyone (``deleted``) stays as a remote-deleted item, so it counts
    as kept; its content is checked elsewhere.

    The rules are those of the exclusion rule (24 h cutoff, boundary by policy), evaluated at
    the archive's own backup time, so a clock that ticked between loading and backing up
    changes nothing.
    """
    timer = message["expires_in_ms"]
    update = message.get("update") or {}
    if timer and update.get("type") != "timer_change":
        if timer <= DAY_MS:
            return "excluded"
        start = timer_start(message, policy)
        if start is not None:
            limit = backup_time_ms + DAY_MS
            expires_at = start + timer
            if expires_at < limit or (policy != "android" and expires_at == limit):
                return "excluded"
    return "tombstone" if message["kind"] == "view_once" else "kept"


# Uploads, leaks and files --------------------------------------------------------------------

MESSAGE_BACKUP_SUFFIX = "/messageBackup"


def upload_filename(request: RecordedRequest) -> str | None:
    """Return the Upload-Metadata filename of a TUS create request (the object key)."""
    metadata = request.header("upload-metadata") or ""
    for pair in metadata.split(","):
        name, _, value = pair.strip().partition(" ")
        if name == "filename":
            try:
                return base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                return None
    return None


def uploaded_archives(requests: Iterable[RecordedRequest]) -> list[bytes]:
    """Reassemble every message backup the stub received completely, from the TUS requests.

    A create (``POST /upload/<bucket>``) starts an archive; its body and each accepted
    ``PATCH`` body are written at their Upload-Offset. The length comes from Upload-Length on
    the create or, with Upload-Defer-Length, on a PATCH. An archive counts once all its bytes
    arrived.
    """
    pending: dict[str, list[Any]] = {}  # object key -> [length or None, bytes so far]
    complete: list[bytes] = []
    for request in requests:
        accepted = request.status is not None and 200 <= request.status < 300
        if request.plane != "cdn" or not request.path.startswith("/upload/") or not accepted:
            continue
        if request.method == "POST":
            key = upload_filename(request)
            if not key or not key.endswith(MESSAGE_BACKUP_SUFFIX):
                continue
            pending[key] = [None, bytearray(request.body)]
        elif request.method == "PATCH":
            key = request.path.split("/", 3)[-1]
            if key not in pending:
                continue
            offset = int(request.header("upload-offset") or 0)
            pending[key][1][offset : offset + len(request.body)] = request.body
        else:
            continue
        length = request.header("upload-length")
        if length is not None:
            pending[key][0] = int(length)
        if pending[key][0] is not None and len(pending[key][1]) == pending[key][0]:
            complete.append(bytes(pending.pop(key)[1]))
    return complete


def leak_needles(recovery_key: str) -> dict[str, bytes]:
    """Return every encoding of the recovery key and of the keys derived straight from it."""
    normalized = keys.normalize_recovery_key(recovery_key)
    needles = {f"recovery key as {name}": form for name, form in encodings(normalized).items()}
    secrets = {"backup key": keys.derive_backup_key(normalized), "SVR key": keys.derive_svr_key(normalized)}
    for label, value in secrets.items():
        for name, form in encodings(value).items():
            needles[f"{label} as {name}"] = form
    return needles


def is_under(relative: str, prefixes: Iterable[str]) -> bool:
    return any(relative == prefix or relative.startswith(prefix.rstrip("/") + "/") for prefix in prefixes)


def scan_files(root: Path, needles: dict[str, bytes], *, skip: Iterable[str] = ()) -> list[tuple[str, Match]]:
    """Scan every file under ``root`` (except the ``skip`` paths and folders) for the needles."""
    skipped = list(skip)
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if not path.is_file() or is_under(relative, skipped):
            continue
        for match in scan_for(path.read_bytes(), needles):
            found.append((relative, match))
    return found


def decrypted_plaintext(target: Target, path: Path, recovery_key: str, aci: str) -> bytes:
    """Return the decrypted frame stream of an archive as one byte string (small archives)."""
    token = forward_secrecy_token(target, path, recovery_key)
    with open_frames(path, keys.normalize_recovery_key(recovery_key), aci_bytes(aci), token) as messages:
        return b"".join(messages)


# Media tier ------------------------------------------------------------------------------------

IV_LENGTH = 16
MAC_LENGTH = 32


class MediaLayerError(ValueError):
    """A media-tier or transit object does not decrypt: wrong key, bad MAC or padding."""


def decrypt_layer(blob: bytes, aes_key: bytes, hmac_key: bytes) -> bytes:
    """Check the HMAC-SHA256 of ``IV || AES-CBC ciphertext`` and return the unpadded plaintext."""
    if len(blob) < IV_LENGTH + 16 + MAC_LENGTH:
        raise MediaLayerError(f"object of {len(blob)} bytes is too short")
    body, mac = blob[:-MAC_LENGTH], blob[-MAC_LENGTH:]
    if not hmac.compare_digest(mac, hmac.new(hmac_key, body, "sha256").digest()):
        raise MediaLayerError("MAC does not match")
    decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(body[:IV_LENGTH])).decryptor()
    padded = decryptor.update(body[IV_LENGTH:]) + decryptor.finalize()
    unpadder = sym_padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise MediaLayerError("padding is invalid") from None


# Media name suffix of an attachment's thumbnail (Signal-Android: mediaName + "_thumbnail").
THUMBNAIL_SUFFIX = "_thumbnail"


def media_id_text(media_id: bytes) -> str:
    return base64.urlsafe_b64encode(media_id).decode("ascii").rstrip("=")


@dataclasses.dataclass
class MediaTier:
    """The media-tier objects of one archive's media backup id, against its attachments."""

    objects: dict[str, str]  # object name (mediaId) -> object path
    expected: dict[str, tuple[str, Any]]  # mediaId -> (location, attachment record)
    unreferenced: list[str]
    missing: list[str]


def media_objects(stub: Any, view: ArchiveView, aci: str) -> MediaTier:
    """List the media tier of the archive's media backup id and match it to the attachments."""
    media_root_key = view.info.media_root_key
    record = stub.admin.backup(media_backup_id_of(media_root_key, aci))
    objects: dict[str, str] = {}
    if record is not None:
        prefix = f"backups/{record['backup_dir']}/{record['media_dir']}"
        for entry in stub.admin.objects(prefix):
            objects[entry["path"].rsplit("/", 1)[-1]] = entry["path"]
    expected: dict[str, tuple[str, Any]] = {}
    thumbnails: set[str] = set()
    for item in view.items:
        for attachment in item.attachments:
            name = attachment.media_name()
            if name is None:
                continue
            media_id = media_id_text(keys.derive_media_id(media_root_key, name))
            expected[media_id] = (item.location(), attachment)
            # A paid client may also store the attachment's thumbnail under "<name>_thumbnail".
            thumbnails.add(media_id_text(keys.derive_media_id(media_root_key, name + THUMBNAIL_SUFFIX)))
    unreferenced = sorted(set(objects) - set(expected) - thumbnails)
    missing = [f"{location}: {attachment.role} '{attachment.file_name}'" for media_id, (location, attachment) in expected.items() if media_id not in objects]
    return MediaTier(objects, expected, unreferenced, missing)


def decrypt_media_object(blob: bytes, media_root_key: bytes, attachment: Any) -> bytes:
    """Decrypt both layers of a media-tier object and return the attachment plaintext."""
    name = attachment.media_name()
    media_id = keys.derive_media_id(media_root_key, name)
    hmac_key, aes_key = keys.derive_media_encryption_key(media_root_key, media_id)
    inner = decrypt_layer(blob, aes_key, hmac_key)
    plaintext = decrypt_layer(inner, attachment.key[:32], attachment.key[32:])
    return plaintext[: attachment.size]


def archive_messages(target: Target, path: Path, recovery_key: str, aci: str) -> list[bytes]:
    """Return the decrypted messages (BackupInfo first) of an archive."""
    token = forward_secrecy_token(target, path, recovery_key)
    with open_frames(path, keys.normalize_recovery_key(recovery_key), aci_bytes(aci), token) as messages:
        return list(messages)


def reencrypt(target: Target, original: Path, recovery_key: str, aci: str, messages: Iterable[bytes], out: Path) -> Path:
    """Write ``messages`` as an archive with the same keys and header as ``original``.

    The result has a valid MAC for this recovery key, so a restore gets past the integrity
    check and meets whatever the messages contain.
    """
    header = read_header(original)
    token = forward_secrecy_token(target, original, recovery_key)
    key = keys.MessageBackupKey.from_recovery_key(keys.normalize_recovery_key(recovery_key), aci_bytes(aci), token)
    metadata = header.metadata.raw if header.metadata is not None else None
    write_archive((encode_message(message) for message in messages), out, key, layout=header.layout, metadata=metadata)
    return out
