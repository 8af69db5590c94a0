"""Test helpers for the reference app: a phone (the app process) registered at a stub server,
small resolved scenarios, and a reader for the archive the phone uploaded.

The tests drive the app only through ``ReferenceTarget``; they read what the server stored
through the stub's admin API and decrypt it with the recovery key, as the harness does.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness import keys, schema
from harness.archive import read_header
from harness.frames import iter_messages, open_frames, read_file_chunks
from harness.stub_process import StubProcess
from harness.targets.base import Account, StubEndpoints
from harness.targets.reference import ReferenceTarget

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
BOB_ACI = "5f3c2a7e-0c1d-4b8e-9a51-2f6d3e4b7c10"
CAROL_ACI = "6a1b2c3d-0c1d-4b8e-9a51-2f6d3e4b7c11"


@pytest.fixture(scope="module")
def app_stub() -> Iterator[StubProcess]:
    with StubProcess.start() as process:
        yield process


@dataclass
class Phone:
    """One reference app process with its own account at the stub."""

    target: ReferenceTarget
    stub: StubProcess
    account: Account

    @property
    def aci_bytes(self) -> bytes:
        return uuid.UUID(self.account.aci).bytes

    def reinstall(self) -> None:
        """Wipe the app and register it again, as a new phone would."""
        self.target.wipe()
        self.target.start()
        self.target.register_account(self.account)

    def archive_path(self, recovery_key: str) -> str | None:
        backup_key = keys.derive_backup_key(keys.normalize_recovery_key(recovery_key))
        return self.stub.admin.message_backup_path(keys.derive_backup_id(backup_key, self.aci_bytes))

    def download_archive(self, recovery_key: str, destination: Path) -> Path:
        path = self.archive_path(recovery_key)
        assert path is not None, "the server has no backup record for this recovery key"
        return self.stub.admin.download_object(path, destination)

    def media_objects(self, media_root_key: bytes) -> dict[str, str]:
        """Return the media tier objects of this account's media backup id: mediaId text -> path."""
        record = self.stub.admin.backup(keys.derive_backup_id(media_root_key, self.aci_bytes))
        if record is None:
            return {}
        prefix = f"backups/{record['backup_dir']}/{record['media_dir']}/"
        return {entry["path"].rsplit("/", 1)[-1]: entry["path"] for entry in self.stub.admin.objects(prefix)}

    def uploaded(self, recovery_key: str, destination: Path) -> Backup:
        """Download the uploaded archive, decrypt it and parse every frame."""
        archive = self.download_archive(recovery_key, destination)
        return Backup(read_archive(archive, keys.normalize_recovery_key(recovery_key), self.aci_bytes))


def read_archive(path: Path, recovery_key: str, aci: bytes) -> list[bytes]:
    """Return the decrypted messages of a legacy or modern archive made by the reference app."""
    token = None
    header = read_header(path)
    if header.layout == "modern":
        # The app's SVR-B stand-in: the token is recoverable from the header with the key.
        from reference_app.forward_secrecy import recover_token

        token = recover_token(keys.derive_backup_key(recovery_key), header.metadata)
    with open_frames(path, recovery_key, aci, forward_secrecy_token=token) as messages:
        return list(messages)


class Backup:
    """The frames of one archive, parsed with the project's schema."""

    def __init__(self, messages: list[bytes]):
        self.info = schema.BackupInfo.FromString(messages[0])
        self.frames = [schema.Frame.FromString(message) for message in messages[1:]]

    def chat_items(self) -> list[Any]:
        return [frame.chat_item for frame in self.frames if frame.WhichOneof("item") == "chat_item"]

    def sent_times(self) -> set[int]:
        return {item.date_sent for item in self.chat_items()}

    def item(self, sent_ms: int) -> Any:
        for item in self.chat_items():
            if item.date_sent == sent_ms:
                return item
        raise AssertionError(f"no chat item sent at {sent_ms} in the archive")

    def texts(self) -> set[str]:
        return {item.standard_message.text.body for item in self.chat_items() if item.HasField("standard_message")}


def start_phone(
    app_stub: StubProcess,
    work_dir: Path,
    *,
    defects: tuple[str, ...] = (),
    layout: str = "legacy",
    policy: str = "android",
    backup_level: int | None = None,
    seed: int | None = 7,
) -> Phone:
    """Start an app, register a fresh account at the stub and on the app, set the clock."""
    aci = str(uuid.uuid4())
    password = "pw-" + uuid.uuid4().hex[:8]
    app_stub.admin.register_account(aci, password, "+15550100000", backup_level=backup_level)
    account = Account(aci=aci, e164="+15550100000", password=password)
    target = ReferenceTarget(work_dir, defects=defects, policy=policy, layout=layout, seed=seed)
    target.start()
    target.set_clock(int(app_stub.admin.now() * 1000), "UTC")
    params = base64.b64encode(app_stub.admin.zk_public_params()).decode("ascii")
    target.point_at(StubEndpoints(url=app_stub.url, zk_public_params=params))
    target.register_account(account)
    return Phone(target, app_stub, account)


# --- resolved scenarios ------------------------------------------------------------------------


def message(message_id: str, sent_ms: int, **fields: Any) -> dict[str, Any]:
    """Return a resolved scenario message with every key set; ``fields`` override defaults."""
    direction = fields.pop("direction", "incoming")
    base: dict[str, Any] = {
        "id": message_id,
        "chat": "bob",
        "direction": direction,
        "author": "bob" if direction == "incoming" else "self",
        "kind": "text",
        "text": f"text of {message_id}",
        "read": False if direction == "incoming" else None,
        "status": "sent" if direction == "outgoing" else None,
        "sent_ms": sent_ms,
        "received_ms": sent_ms,
        "expires_in_ms": None,
        "expire_start_ms": None,
        "attachments": [],
        "reactions": [],
        "quote": None,
        "deleted": False,
        "edits": [],
        "update": None,
        "sticker": None,
        "expect": {},
    }
    base.update(fields)
    return base


def attachment(seed: str, size: int = 4000, content_type: str = "image/jpeg", **fields: Any) -> dict[str, Any]:
    return {
        "file_name": f"{seed}.jpg",
        "content_type": content_type,
        "size": size,
        "caption": None,
        "seed": seed,
        "thumbnail": False,
        "embed": None,
        "expect": {},
        **fields,
    }


def scenario(now_ms: int, messages: list[dict[str, Any]], *, group: bool = False) -> dict[str, Any]:
    """Return a resolved scenario with Bob (and Carol), a chat with Bob, optionally a group."""
    contacts = [
        {"id": "bob", "name": "Bob Jones", "aci": BOB_ACI, "e164": "+15550100001"},
        {"id": "carol", "name": "Carol Diaz", "aci": CAROL_ACI, "e164": "+15550100002"},
    ]
    chats = [{"id": "bob", "with": "bob", "kind": "contact", "title": "Bob Jones", "members": ["bob"], "expires_in_ms": None}]
    groups = []
    if group:
        groups.append({"id": "climbing", "title": "Climbing", "members": ["bob", "carol"]})
        chats.append(
            {"id": "climbing", "with": "climbing", "kind": "group", "title": "Climbing", "members": ["bob", "carol"], "expires_in_ms": None}
        )
    return {
        "name": "test",
        "description": "",
        "now_ms": now_ms,
        "self": {"name": "Alice", "aci": str(uuid.uuid4()), "e164": "+15550100000"},
        "contacts": contacts,
        "groups": groups,
        "chats": chats,
        "messages": messages,
        "steps": [],
    }


def read_file_messages(path: Path) -> list[bytes]:
    return list(iter_messages(read_file_chunks(path)))
