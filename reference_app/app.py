"""The reference app: its state on disk, its services and the user actions the control API calls.

Data directory layout (the app's private files, removed by a wipe):

    messages.db       the message store (SQLite)
    attachments/      attachment plaintext
    keystore.json     recovery key and media root key, encrypted with a key in the device file
    settings.json     account and backup settings
    credentials.json  cached backup credentials
    cache/            archive exports and downloads in progress

The log and the device file (clock, time zone, server address) live outside it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
import uuid
from pathlib import Path
from typing import Any

from reference_app.backup_job import BackupFailure, BackupService
from reference_app.clock import DeviceClock, InvalidTimezoneError
from reference_app.conversations import ConversationError, Conversations, NewAttachment, NewMessage, new_attachment
from reference_app.defects import Defects
from reference_app.device import DeviceState
from reference_app.jobs import JobRunner
from reference_app.keystore import KeyStore
from reference_app.media import AttachmentFiles, generate_content
from reference_app.restore import RestoreService
from reference_app.rotation import RotationRefused, regenerate_recovery_key
from reference_app.scenario_load import ScenarioPayloadError, load_messages, load_people_and_chats
from reference_app.schedule import Scheduler
from reference_app import screens, transit_uploads
from reference_app.settings import Account, SettingsFile
from reference_app.store import MessageStore
from reference_app.thumbnails import has_thumbnail, thumbnail_for_seed

log = logging.getLogger(__name__)

POLICIES = ("android", "ios")
LAYOUTS = ("modern", "legacy")
DEFAULT_WAIT_S = 60.0


class ActionError(Exception):
    """A control request that cannot be carried out: ``status`` and ``code`` go to the reply."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code


def bad_request(message: str) -> ActionError:
    return ActionError(400, "bad-request", message)


def field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], *, required: bool = True, default: Any = None) -> Any:
    """Read one field of a request body, with a clear error for a missing or mistyped value."""
    if name not in body or body[name] is None:
        if required:
            raise bad_request(f"missing field {name!r}")
        return default
    value = body[name]
    if isinstance(value, bool) and kind in (int, (int,)):
        raise bad_request(f"field {name!r} must be an integer, got a boolean")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise bad_request(f"field {name!r} must be {names}, got {type(value).__name__}")
    return value


class App:
    def __init__(
        self,
        data_dir: Path,
        *,
        defects: Defects,
        policy: str = "android",
        layout: str = "modern",
        device_file: Path | None = None,
        clock: DeviceClock | None = None,
        seed: int | None = None,
    ):
        if policy not in POLICIES:
            raise ValueError(f"unknown boundary policy {policy!r}; use android or ios")
        if layout not in LAYOUTS:
            raise ValueError(f"unknown archive layout {layout!r}; use modern or legacy")
        self.data_dir = data_dir
        self.defects = defects
        self.policy = policy
        self.layout = layout
        data_dir.mkdir(parents=True, exist_ok=True)
        if clock is None:
            clock = DeviceClock(DeviceState(device_file or data_dir.with_name(data_dir.name + ".device.json")))
        self.clock = clock
        self.device = clock.device
        self.settings = SettingsFile(data_dir / "settings.json")
        self.keystore = KeyStore(data_dir / "keystore.json", self.device)
        self.store = MessageStore(data_dir / MessageStore.FILE_NAME)
        self.files = AttachmentFiles(data_dir / "attachments")
        self.conversations = Conversations(defects)
        self.jobs = JobRunner()
        self.backups = BackupService(self)
        self.restorer = RestoreService(self)
        self.scheduler = Scheduler(self, seed)
        self.restoring = False
        self._store_swap = threading.Lock()
        self.clock.add_listener(self.scheduler.wake)

    def start(self) -> None:
        self.scheduler.start()

    def close(self) -> None:
        self.scheduler.stop()
        self.jobs.stop()
        self.backups.close_client()
        self.store.close()

    def replace_store(self, new_file: Path) -> None:
        """Put a fully written store file in place of the message store (restore)."""
        with self._store_swap, self.store.lock:
            old = self.store
            old.close()
            os.replace(new_file, old.path)
            self.store = MessageStore(old.path)

    def plant_key_defects(self, recovery_key: str) -> None:
        if self.defects.active("key-to-log"):
            log.info("recovery key for support: %s", recovery_key)
        if self.defects.active("key-in-settings"):
            (self.data_dir / "debug_settings.json").write_text(json.dumps({"recovery_key": recovery_key}), encoding="utf-8")

    # --- app and device -----------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return {
            "ok": True,
            "pid": os.getpid(),
            "defects": list(self.defects.names),
            "policy": self.policy,
            "layout": self.layout,
            "registered": self.settings.value.account is not None,
        }

    def point_at(self, body: dict[str, Any]) -> dict[str, Any]:
        url = field(body, "url", str)
        params = field(body, "zk_public_params", str)
        if not url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]", "https://127.0.0.1", "https://localhost")):
            raise bad_request(f"server url {url!r} is not on loopback; the reference app only talks to a local stub")
        try:
            base64.b64decode(params, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request("zk_public_params is not standard base64") from None
        self.device.update(server={"url": url.rstrip("/"), "zk_public_params": params})
        log.info("server set url=%s", url)
        return {"ok": True}

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        aci = field(body, "aci", str)
        try:
            aci = str(uuid.UUID(aci))
        except ValueError:
            raise bad_request(f"aci {aci!r} is not a UUID") from None
        account = Account(
            aci=aci,
            e164=field(body, "e164", str),
            device_id=field(body, "device_id", int, required=False, default=1),
            password=field(body, "password", str, required=False, default=""),
        )
        with self.store.transaction() as db:
            self.conversations.ensure_account(db, field(body, "name", str, required=False, default="Me"))
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('aci', ?)", (aci,))
        with self.settings.lock:
            self.settings.value.account = account
            self.settings.value.restore_pending = self.store.is_empty() and self.keystore.recovery_key is None
            self.settings.save()
        log.info("account registered aci=%s device_id=%d", aci, account.device_id)
        return {"ok": True, "restore_pending": self.settings.value.restore_pending}

    def clock_state(self) -> dict[str, Any]:
        return {"epoch_ms": self.clock.now_ms(), "timezone": self.clock.timezone_name}

    def set_clock(self, body: dict[str, Any]) -> dict[str, Any]:
        epoch_ms = field(body, "epoch_ms", int)
        try:
            self.clock.set(epoch_ms, field(body, "timezone", str, required=False))
        except (InvalidTimezoneError, ValueError) as error:
            raise bad_request(str(error)) from None
        return {**self.clock_state(), "jobs_started": self.scheduler.due_jobs()}

    def advance_clock(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            self.clock.advance(field(body, "delta_ms", int))
        except ValueError as error:
            raise bad_request(str(error)) from None
        return {**self.clock_state(), "jobs_started": self.scheduler.due_jobs()}

    # --- conversations ------------------------------------------------------------------------

    def _skip_restore(self) -> None:
        if self.settings.value.restore_pending:
            with self.settings.lock:
                self.settings.value.restore_pending = False
                self.settings.save()

    def _require_account(self) -> None:
        if self.settings.value.account is None:
            raise ActionError(409, "not-registered", "register an account first (POST /account)")

    def load_scenario(self, body: dict[str, Any]) -> dict[str, Any]:
        self._require_account()
        self._skip_restore()
        try:
            with self.store.transaction() as db:
                counts = load_people_and_chats(db, self.conversations, body)
        except ScenarioPayloadError as error:
            raise bad_request(str(error)) from None
        if isinstance(body.get("now_ms"), int):
            log.info("scenario %s loaded (scenario time %d)", body.get("name"), body["now_ms"])
        return counts

    def load_scenario_messages(self, body: dict[str, Any]) -> dict[str, Any]:
        self._require_account()
        messages = field(body, "messages", list)
        start = field(body, "start_index", int, required=False, default=0)
        before = set(self.files.names())
        try:
            with self.store.transaction() as db:
                added = load_messages(db, self.conversations, self.files, messages, start)
        except ScenarioPayloadError as error:
            for name in set(self.files.names()) - before:
                self.files.delete(name)
            raise bad_request(str(error)) from None
        self.jobs.submit("upload-attachments", lambda: transit_uploads.upload_pending(self), coalesce=True)
        return {"added": added, **self.store.counts()}

    def _chat_id(self, title: str) -> int:
        with self.store.lock:
            titles = screens.chat_titles(self.store.connection())
        for chat_id, chat_title in titles.items():
            if chat_title == title:
                return chat_id
        row = self.store.query_one("SELECT id FROM chats WHERE scenario_id = ?", (title,))
        if row is not None:
            return int(row["id"])
        raise ActionError(404, "not-found", f"no chat titled {title!r}; GET /chats lists the chats")

    def _recipient(self, name: str) -> int:
        row = self.store.query_one("SELECT id FROM recipients WHERE scenario_id = ? OR name = ?", (name, name))
        if row is None:
            raise ActionError(404, "not-found", f"no contact named {name!r}")
        return int(row["id"])

    def _chat_contact(self, chat_id: int) -> int:
        row = self.store.query_one(
            "SELECT recipients.id, recipients.kind FROM chats JOIN recipients ON recipients.id = chats.recipient_id WHERE chats.id = ?",
            (chat_id,),
        )
        if row is None or row["kind"] != "contact":
            raise bad_request("this chat is not a 1:1 chat; name the author of the incoming message")
        return int(row["id"])

    def _new_message(self, body: dict[str, Any], direction: str, attachments: list[NewAttachment]) -> NewMessage:
        """Build the message; ``attachments`` receives each attachment as its files are written."""
        chat_id = self._chat_id(field(body, "chat", str))
        now = self.clock.now_ms()
        chat = self.store.query_one("SELECT expiration_timer_ms FROM chats WHERE id = ?", (chat_id,))
        expires_in = field(body, "expires_in_ms", int, required=False, default=chat["expiration_timer_ms"])
        read = bool(body.get("read", False))
        # An outgoing timer starts when the message is sent, an incoming one when it is read.
        start = now if expires_in and (direction == "outgoing" or read) else None

        view_once = bool(body.get("view_once", False))
        specs = field(body, "attachments", list, required=False, default=[])
        for index, spec in enumerate(specs):
            attachments.append(self._attachment(spec, index))
        if view_once and len(attachments) != 1:
            raise bad_request("a view-once message needs exactly one attachment")
        if view_once:
            kind = "view_once"
        elif attachments:
            kind = "media"
        else:
            kind = "text"

        return NewMessage(
            chat_id=chat_id,
            author_id=self._author(body, direction, chat_id),
            direction=direction,
            sent_ms=field(body, "sent_at_ms", int, required=False, default=now),
            kind=kind,
            text=field(body, "text", str, required=False),
            received_ms=now,
            read=read,
            expires_in_ms=expires_in or None,
            expire_start_ms=start,
            attachments=attachments,
            quote_item_id=self._quoted_item(body, chat_id),
        )

    def _author(self, body: dict[str, Any], direction: str, chat_id: int) -> int:
        if direction == "outgoing":
            with self.store.lock:
                return self.conversations.self_id(self.store.connection())
        if body.get("author"):
            return self._recipient(field(body, "author", str))
        return self._chat_contact(chat_id)

    def _quoted_item(self, body: dict[str, Any], chat_id: int) -> int | None:
        quote = body.get("quote")
        if quote is None:
            return None
        if not isinstance(quote, dict):
            raise bad_request("field 'quote' must be an object {\"sent_at_ms\": N}")
        target_sent = field(quote, "sent_at_ms", int)
        with self.store.lock:
            try:
                return int(self.conversations.find_item(self.store.connection(), chat_id, target_sent)["id"])
            except ConversationError as error:
                raise ActionError(404, "not-found", f"quoted message: {error}") from None

    def _attachment(self, spec: Any, index: int):
        if not isinstance(spec, dict):
            raise bad_request(f"attachments[{index}] must be an object")
        size = field(spec, "size", int)
        if size < 0:
            raise bad_request(f"attachments[{index}].size must not be negative")
        seed = str(spec.get("seed", f"attachment:{self.clock.now_ms()}:{index}"))
        data = generate_content(seed, size, spec.get("embed"))
        content_type = field(spec, "content_type", str)
        flag = spec.get("thumbnail", has_thumbnail(content_type))
        if not isinstance(flag, bool):
            raise bad_request(f"attachments[{index}].thumbnail must be true or false")
        return new_attachment(
            self.files,
            data,
            content_type,
            thumbnail=thumbnail_for_seed(seed) if flag else None,
            file_name=spec.get("file_name"),
            caption=spec.get("caption"),
        )

    def add_message(self, body: dict[str, Any], direction: str) -> dict[str, Any]:
        self._require_account()
        self._skip_restore()
        written: list[NewAttachment] = []
        try:
            message = self._new_message(body, direction, written)
            with self.store.transaction() as db:
                self.conversations.add_message(db, message)
        except (ActionError, ConversationError) as error:
            # A rejected message leaves no attachment or thumbnail file behind.
            for attachment in written:
                self.files.delete(attachment.local_file)
                self.files.delete(attachment.thumbnail_file)
            if isinstance(error, ActionError):
                raise
            raise ActionError(404 if error.code == "not-found" else 409, error.code, str(error)) from None
        if message.attachments:
            self.jobs.submit("upload-attachments", lambda: transit_uploads.upload_pending(self), coalesce=True)
        action = "sent" if direction == "outgoing" else "received"
        log.info("message %s chat=%d sent_ms=%d", action, message.chat_id, message.sent_ms)
        return {"sent_at_ms": message.sent_ms}

    def _item(self, body: dict[str, Any]):
        with self.store.lock:
            db = self.store.connection()
            try:
                if body.get("scenario_id"):
                    return self.conversations.find_by_scenario_id(db, field(body, "scenario_id", str))
                chat_id = self._chat_id(field(body, "chat", str))
                return self.conversations.find_item(db, chat_id, field(body, "sent_at_ms", int))
            except ConversationError as error:
                raise ActionError(404, "not-found", str(error)) from None

    def _run_action(self, action) -> None:
        try:
            with self.store.transaction() as db:
                action(db)
        except ConversationError as error:
            raise ActionError(404 if error.code == "not-found" else 409, error.code, str(error)) from None

    def mark_read(self, body: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(field(body, "chat", str))
        result: dict[str, int] = {}
        self._run_action(lambda db: result.update(read=self.conversations.mark_read(db, chat_id, self.clock.now_ms())))
        return result

    def view(self, body: dict[str, Any]) -> dict[str, Any]:
        item = self._item(body)
        self._run_action(lambda db: self.conversations.view_once_opened(db, self.files, item))
        return {"ok": True}

    def react(self, body: dict[str, Any]) -> dict[str, Any]:
        item = self._item(body)
        emoji = field(body, "emoji", str)
        if body.get("author"):
            author = self._recipient(field(body, "author", str))
        else:
            with self.store.lock:
                author = self.conversations.self_id(self.store.connection())
        self._run_action(lambda db: self.conversations.react(db, item, emoji, author, self.clock.now_ms()))
        return {"ok": True}

    def edit(self, body: dict[str, Any]) -> dict[str, Any]:
        item = self._item(body)
        text = field(body, "text", str)
        now = self.clock.now_ms()
        self._run_action(lambda db: self.conversations.edit(db, item, text, now))
        return {"sent_at_ms": now}

    def delete(self, body: dict[str, Any]) -> dict[str, Any]:
        item = self._item(body)
        for_everyone = bool(field(body, "for_everyone", bool, required=False, default=False))
        self._run_action(lambda db: self.conversations.delete(db, self.files, item, for_everyone))
        log.info("message deleted for_everyone=%s", for_everyone)
        return {"ok": True}

    def chats(self) -> dict[str, Any]:
        with self.store.lock:
            return {"chats": screens.chat_list(self.store.connection())}

    def messages(self, chat: str | None) -> dict[str, Any]:
        chat_id = self._chat_id(chat) if chat else None
        with self.store.transaction() as db:
            self.conversations.purge_expired(db, self.files, self.clock.now_ms())
            return {"messages": screens.messages(db, self.files, chat_id)}

    # --- backups --------------------------------------------------------------------------------

    def enable_backups(self, body: dict[str, Any]) -> dict[str, Any]:
        tier = field(body, "tier", str, required=False, default="free")
        try:
            return {"recovery_key": self.backups.enable(tier)}
        except ValueError as error:
            raise bad_request(str(error)) from None
        except BackupFailure as failure:
            raise ActionError(409, failure.kind, str(failure)) from None

    def run_backup(self, body: dict[str, Any]) -> dict[str, Any]:
        if not self.settings.value.backups.enabled:
            raise ActionError(409, "backups-disabled", "backups are turned off; POST /backups/enable first")
        future = self.jobs.submit("backup", lambda: self.backups.run("manual"), coalesce=True)
        if not body.get("wait", True):
            return {"started": True}
        timeout = field(body, "timeout_s", (int, float), required=False, default=DEFAULT_WAIT_S)
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            raise ActionError(504, "timeout", f"the backup did not finish within {timeout} s") from None

    def backup_status(self) -> dict[str, Any]:
        backups = self.settings.value.backups
        return {
            "enabled": backups.enabled,
            "tier": backups.tier if backups.enabled else None,
            "last_backup_ms": backups.last_backup_ms,
            "next_backup_ms": backups.next_backup_ms,
            "error": backups.error,
            "backup_hour": backups.hour,
            "backup_minute": backups.minute,
            "running": self.jobs.current == "backup",
            "initialized": backups.initialized,
            "restore_pending": self.settings.value.restore_pending,
            "downgraded": backups.downgraded,
        }

    def regenerate_key(self) -> dict[str, Any]:
        try:
            return {"recovery_key": regenerate_recovery_key(self)}
        except RotationRefused as error:
            raise ActionError(409, "conflict", str(error)) from None

    def disable_backups(self) -> dict[str, Any]:
        self.jobs.submit("disable", self.backups.disable).result(timeout=DEFAULT_WAIT_S)
        return {"ok": True}

    def set_tier(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            self.backups.set_tier(field(body, "tier", str))
        except ValueError as error:
            raise bad_request(str(error)) from None
        return {"ok": True}

    def set_backup_time(self, body: dict[str, Any]) -> dict[str, Any]:
        hour = field(body, "hour", int)
        minute = field(body, "minute", int)
        if not (0 <= hour <= 23 and 0 <= minute <= 59):
            raise bad_request(f"backup time {hour}:{minute} is not a time of day (hour 0-23, minute 0-59)")
        with self.settings.lock:
            self.settings.value.backups.hour = hour
            self.settings.value.backups.minute = minute
            self.settings.save()
        self.scheduler.reschedule()
        return {"next_backup_ms": self.settings.value.backups.next_backup_ms}

    def refresh_now(self) -> dict[str, Any]:
        return self.jobs.submit("refresh", self.backups.refresh).result(timeout=DEFAULT_WAIT_S)

    def restore(self, body: dict[str, Any]) -> dict[str, Any]:
        entry = field(body, "recovery_key", str)
        timeout = field(body, "timeout_s", (int, float), required=False, default=DEFAULT_WAIT_S)
        future = self.jobs.submit("restore", lambda: self.restorer.restore(entry))
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            raise ActionError(504, "timeout", f"the restore did not finish within {timeout} s") from None
