"""Restore from the remote backup with the recovery key, onto a freshly installed app.

The steps follow Signal-Android's ``restoreRemoteBackup``:

1. check the entered key against the format rules;
2. fetch the messages credentials, committing nothing (no ``PUT /backupid`` or ``PUT /keys``
   before a restore);
3. read the backup info and download the archive;
4. recover the forward-secrecy token from the archive header;
5. verify the MAC over the whole file before any frame is read;
6. import into a separate store file, and only then replace the message store;
7. download the attachments the archive points to (media tier first on the paid tier, then
   the transit tier). Images and videos also get their thumbnails: from the media tier on the
   paid tier, otherwise made from the restored files.

Any failure leaves the message store exactly as it was and returns a kind the screen shows:
``invalid-key``, ``incorrect-key``, ``corrupt``, ``missing``, ``network``, ``not-registered``,
``not-configured`` or ``not-empty``. A later attempt with the right key works.
"""

from __future__ import annotations

import hashlib
import logging
import traceback
import uuid
import zlib

import requests
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from harness import keys
from harness.archive import open_archive, read_header
from harness.errors import ArchiveError, MacMismatchError, RecoveryKeyError
from harness.frames import iter_messages
from libsignal_bridge.zk import TYPE_MESSAGES
from reference_app import forward_secrecy
from reference_app.archive_client import ArchiveClient
from reference_app.archive_credentials import CREDENTIAL_WINDOW_DAYS, DAY_SECONDS, MemoryCredentialStore, day_start
from reference_app.archive_responses import issued_credentials
from reference_app.backup_job import BackupFailure
from reference_app.errors import (
    AppError,
    CredentialVerificationFailed,
    NotFound,
    ServerUnreachable,
    Unauthorized,
)
from reference_app.http_api import json_object
from reference_app.importer import Importer, ImportResult
from reference_app.media import AttachmentIntegrityError, decrypt_attachment, decrypt_layer
from reference_app.media_copy import media_name, thumbnail_media_name
from reference_app.media_tier import MEDIA_TIER_CDN
from reference_app.store import MessageStore
from reference_app.thumbnails import decrypt_thumbnail_object, has_thumbnail, thumbnail_for_plaintext

if TYPE_CHECKING:
    from reference_app.app import App

log = logging.getLogger(__name__)

PLACEHOLDER_MEDIA_ROOT_KEY = bytes(32)


class RestoreFailure(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class MessagesOnlyClient(ArchiveClient):
    """An archive client for the restore, before the media root key is known.

    The media root key comes out of the archive, so only the messages credentials can be
    unblinded at this point. The media ones are skipped instead of failing the whole fetch.
    NOTE: this overrides ArchiveClient.fetch_credentials and depends on its private helpers.
    """

    def fetch_credentials(self) -> None:
        with self._lock:
            today = day_start(self._clock())
            end = today + CREDENTIAL_WINDOW_DAYS * DAY_SECONDS
            route = "GET /v1/archives/auth"
            params = {"redemptionStartSeconds": today, "redemptionEndSeconds": end}
            body = json_object(self._account_call("GET", "/v1/archives/auth", params=params), route)
            issued = issued_credentials(body, route, today, end)
            context = self._request_context(TYPE_MESSAGES)[0]
            received = {TYPE_MESSAGES: {day: self._receive(context, response, day) for day, response in issued[TYPE_MESSAGES].items()}}
            self._cache.replace(received, today)
            log.info("cached messages credentials for %d days", len(received[TYPE_MESSAGES]))


class RestoreService:
    def __init__(self, app: App):
        self.app = app
        self.cache = app.data_dir / "cache"
        # Set when the server returns 404 for the backup. Only the caches-missing-backup defect reads it.
        self._no_backup_seen = False

    def restore(self, entry: str) -> dict[str, Any]:
        log.info("restore started")
        self.app.restoring = True
        archive_path = self.cache / "restore.archive"
        try:
            counts = self._restore(entry, archive_path)
        except RestoreFailure as failure:
            log.error("restore failed kind=%s: %s", failure.kind, failure)
            return {"ok": False, "error": str(failure), "error_kind": failure.kind}
        finally:
            self.app.restoring = False
            archive_path.unlink(missing_ok=True)
        log.info("restore finished chats=%d chat_items=%d", counts["chats"], counts["chat_items"])
        return {"ok": True, "error": None, "error_kind": None, **counts}

    def _restore(self, entry: str, archive_path: Path) -> dict[str, int]:
        try:
            recovery_key = keys.normalize_recovery_key(entry)
        except RecoveryKeyError as error:
            if self.app.defects.active("no-key-format-check"):
                raise RestoreFailure("incorrect-key", "incorrect recovery key") from None
            raise RestoreFailure("invalid-key", str(error)) from None
        if self.app.settings.value.account is None:
            raise RestoreFailure("not-registered", "register the account on this phone before restoring")
        if not self.app.store.is_empty():
            raise RestoreFailure("not-empty", "this phone already has chats; a backup can only be restored on a fresh install")
        self.cache.mkdir(parents=True, exist_ok=True)
        self._download(recovery_key, archive_path)
        result = self._import(recovery_key, archive_path)
        self._finish(recovery_key, result)
        self._restore_media()
        return self.app.store.counts()

    # --- download -----------------------------------------------------------------------------

    def _download(self, recovery_key: str, archive_path: Path) -> None:
        defects = self.app.defects
        if defects.active("caches-missing-backup") and self._no_backup_seen:
            raise RestoreFailure("missing", "no backup was found on the server for this account")
        wrong_key_kind = "corrupt" if defects.active("wrong-key-reported-as-corrupt") else "incorrect-key"
        try:
            # Credentials of a key that is not confirmed yet are kept in memory only.
            client = self.app.backups.make_client(
                recovery_key, PLACEHOLDER_MEDIA_ROOT_KEY, MessagesOnlyClient, store=MemoryCredentialStore()
            )
        except BackupFailure as failure:
            raise RestoreFailure(failure.kind, str(failure)) from None
        try:
            if self.app.defects.active("commits-before-restore"):
                client.commit_backup_ids()
            client.download_backup(archive_path)
        except CredentialVerificationFailed:
            raise RestoreFailure(wrong_key_kind, "incorrect recovery key: it does not belong to this account's backup") from None
        except Unauthorized:
            raise RestoreFailure(wrong_key_kind, "incorrect recovery key: the server has no backup for it") from None
        except NotFound:
            self._no_backup_seen = True
            if defects.active("missing-reported-as-network"):
                raise RestoreFailure("network", "the backup could not be downloaded; check the connection") from None
            raise RestoreFailure("missing", "no backup was found on the server for this account") from None
        except ServerUnreachable as error:
            raise RestoreFailure("network", str(error)) from None
        except AppError as error:
            raise RestoreFailure("network", f"downloading the backup failed: {error}") from None
        except requests.RequestException as error:
            # A connection cut while the body streams is not mapped by the client.
            if defects.active("traceback-in-restore-error"):
                raise RestoreFailure("network", traceback.format_exc()) from None
            raise RestoreFailure("network", f"the backup download was interrupted: {error}") from None
        finally:
            client.close()

    # --- import --------------------------------------------------------------------------------

    def _message_key(self, recovery_key: str, archive_path: Path) -> keys.MessageBackupKey:
        aci = uuid.UUID(self.app.settings.value.account.aci).bytes
        backup_key = keys.derive_backup_key(recovery_key)
        backup_id = keys.derive_backup_id(backup_key, aci)
        header = read_header(archive_path)
        if header.layout == "legacy":
            return keys.derive_message_backup_key(backup_key, backup_id)
        token = forward_secrecy.recover_token(backup_key, header.metadata)
        return keys.derive_message_backup_key(backup_key, backup_id, token)

    def _import(self, recovery_key: str, archive_path: Path) -> ImportResult:
        try:
            message_key = self._message_key(recovery_key, archive_path)
            if self.app.defects.active("partial-restore-on-error"):
                return self._import_in_place(message_key, archive_path)
            return self._import_to_copy(message_key, archive_path)
        except MacMismatchError as error:
            raise RestoreFailure("corrupt", f"the backup failed its integrity check (MAC mismatch): {error}") from None
        except ArchiveError as error:
            raise RestoreFailure("corrupt", f"the backup cannot be read: {error}") from None

    def _chunks(self, message_key: keys.MessageBackupKey, archive_path: Path):
        """Yield the decrypted frame stream; the MAC is checked first (unless a defect skips it)."""
        if self.app.defects.active("restore-ignores-mac"):
            yield decrypt_without_mac(archive_path, message_key)
            return
        with open_archive(archive_path, message_key) as chunks:
            yield from chunks

    def _import_to_copy(self, message_key: keys.MessageBackupKey, archive_path: Path) -> ImportResult:
        app = self.app
        target = app.store.path.with_name(MessageStore.FILE_NAME + ".restoring")
        target.unlink(missing_ok=True)
        staging = MessageStore(target)
        try:
            with staging.transaction() as db:
                result = Importer(db).import_messages(iter_messages(self._chunks(message_key, archive_path)))
                if app.defects.active("restore-drops-reactions"):
                    db.execute("DELETE FROM reactions")
            staging.close()
            app.replace_store(target)
        except BaseException:
            staging.close()
            target.unlink(missing_ok=True)
            raise
        return result

    def _import_in_place(self, message_key: keys.MessageBackupKey, archive_path: Path) -> ImportResult:
        """Defect: empty the live store, then write every frame straight into it, committing
        each one, so an error halfway leaves half a restore behind."""
        with self.app.store.lock:
            db = self.app.store.connection()
            for table in ("meta", "recipients", "group_members", "chats", "chat_items", "attachments", "reactions", "other_frames"):
                db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            importer = Importer(db)
            messages = iter_messages(self._chunks(message_key, archive_path))
            first = next(messages, None)
            if first is None:
                raise ArchiveError("the archive contains no frames")
            importer.import_backup_info(first)
            for index, data in enumerate(messages, start=1):
                importer.import_frame(data, index)
            return importer.result

    def _finish(self, recovery_key: str, result: ImportResult) -> None:
        app = self.app
        app.keystore.store(recovery_key=recovery_key, media_root_key=result.media_root_key)
        tier = self._tier_of(app)
        with app.settings.lock:
            backups = app.settings.value.backups
            backups.enabled = True
            backups.initialized = False
            backups.tier = tier
            backups.last_backup_ms = result.backup_time_ms
            backups.error = None
            app.settings.value.restore_pending = False
            app.settings.save()
        with app.store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('aci', ?)", (app.settings.value.account.aci,))
        app.plant_key_defects(recovery_key)
        app.scheduler.reschedule()

    @staticmethod
    def _tier_of(app: App) -> str:
        from harness import schema

        row = app.store.query_one("SELECT value FROM meta WHERE key = 'account'")
        if row is not None:
            account = schema.AccountData.FromString(row["value"])
            if account.account_settings.HasField("backup_tier") and account.account_settings.backup_tier == 201:
                return "paid"
        return "free"

    # --- media -----------------------------------------------------------------------------------

    def _restore_media(self) -> None:
        app = self.app
        rows = app.store.query(
            "SELECT * FROM attachments WHERE local_file IS NULL AND key IS NOT NULL AND LENGTH(key) = 64"
        )
        if not rows:
            return
        try:
            client = app.backups.client()
        except BackupFailure as failure:
            log.warning("media restore skipped: %s", failure)
            return
        counts = {"restored": 0, "unavailable": 0, "thumbnails": 0, "generated": 0}
        for row in rows:
            data = self._download_attachment(client, row)
            if data is None and app.defects.active("restore-fails-on-missing-media"):
                raise RestoreFailure("network", f"attachment {row['id']} could not be downloaded")
            thumbnail, in_media_tier = self._restore_thumbnail(client, row, data)
            counts["restored" if data is not None else "unavailable"] += 1
            if thumbnail is not None:
                counts["thumbnails" if in_media_tier else "generated"] += 1
            self._save_media(row["id"], data, thumbnail, in_media_tier)
        log.info("media restored count=%d unavailable=%d", counts["restored"], counts["unavailable"])
        log.info("thumbnails restored count=%d generated=%d", counts["thumbnails"], counts["generated"])

    def _save_media(self, attachment_id: int, data: bytes | None, thumbnail: bytes | None, in_media_tier: bool) -> None:
        files = self.app.files
        if data is None and self.app.defects.active("expired-media-shown-available"):
            data = b""
        local_file = files.write(data) if data is not None else None
        thumbnail_file = files.write(thumbnail) if thumbnail is not None else None
        thumbnail_cdn = MEDIA_TIER_CDN if in_media_tier else None
        with self.app.store.transaction() as db:
            db.execute(
                "UPDATE attachments SET local_file = ?, thumbnail_file = ?, thumbnail_media_tier_cdn_number = ? WHERE id = ?",
                (local_file, thumbnail_file, thumbnail_cdn, attachment_id),
            )

    def _restore_thumbnail(self, client: ArchiveClient, row: Any, data: bytes | None) -> tuple[bytes | None, bool]:
        """Return (thumbnail, whether it came from the media tier) for an image or video attachment.

        On the paid tier the thumbnail is downloaded from the media tier. Otherwise, or when
        it is not there, the app makes a new one from the restored plaintext, as a phone
        renders a preview of the full file.
        """
        if not has_thumbnail(row["content_type"]):
            return None, False
        media_root_key = self.app.keystore.media_root_key
        paid = self.app.settings.value.backups.tier == "paid"
        if paid and row["plaintext_hash"] and media_root_key:
            name = media_name(bytes(row["plaintext_hash"]), bytes(row["key"]))
            try:
                stored = client.download_media(keys.derive_media_id(media_root_key, thumbnail_media_name(name)))
                return decrypt_thumbnail_object(stored, media_root_key, name), True
            except (AppError, AttachmentIntegrityError) as error:
                log.debug("thumbnail of attachment %d not in the media tier: %s", row["id"], error)
        if data is None:
            return None, False
        return thumbnail_for_plaintext(hashlib.sha256(data).digest()), False

    def _download_attachment(self, client: ArchiveClient, row: Any) -> bytes | None:
        key = bytes(row["key"])
        size = int(row["size"] or 0)
        plaintext_hash = bytes(row["plaintext_hash"]) if row["plaintext_hash"] else None
        media_root_key = self.app.keystore.media_root_key
        paid = self.app.settings.value.backups.tier == "paid"
        if paid and plaintext_hash and media_root_key:
            media_id = keys.derive_media_id(media_root_key, media_name(plaintext_hash, key))
            try:
                outer = client.download_media(media_id)
                hmac_key, aes_key = keys.derive_media_encryption_key(media_root_key, media_id)
                return decrypt_attachment(decrypt_layer(outer, aes_key, hmac_key), key, size, plaintext_hash)
            except (AppError, AttachmentIntegrityError) as error:
                log.debug("attachment %d not in the media tier: %s", row["id"], error)
        if row["transit_cdn_key"]:
            try:
                blob = client.download_transit(row["transit_cdn_key"])
                return decrypt_attachment(blob, key, size, plaintext_hash)
            except (AppError, AttachmentIntegrityError) as error:
                log.info("attachment %d unavailable on the transit tier: %s", row["id"], error)
        return None


def decrypt_without_mac(archive_path: Path, message_key: keys.MessageBackupKey) -> bytes:
    """Decrypt and inflate an archive without checking its MAC (the restore-ignores-mac defect)."""
    header = read_header(archive_path)
    with open(archive_path, "rb") as handle:
        handle.seek(header.iv_offset)
        iv = handle.read(16)
        ciphertext = handle.read(header.ciphertext_length)
    decryptor = Cipher(algorithms.AES(message_key.aes_key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    try:
        return zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(padded)
    except zlib.error as error:
        raise ArchiveError(f"the decrypted archive is not gzip data: {error}") from None

