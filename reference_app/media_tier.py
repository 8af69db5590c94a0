"""Paid tier: copy every backed-up attachment into the media tier, then delete orphans.

For each attachment the archive points to (and whose plaintext is on the device), the app
derives the media name (hex of plaintext SHA-256 || attachment key), the mediaId and the
copy keys from the media root key, then asks the server to copy the attachment's transit
object into the media tier (``PUT /v1/archives/media/batch``). A transit object that is gone
(410) is uploaded again through the media upload form and copied once more. Afterwards the
listing of the media tier is compared with what the archive references, and objects no
archive references are deleted (``POST /v1/archives/media/delete``).

A 403 means the credential level is not PAID any more: the app falls back to the free tier
and flags the downgrade. A 413 means the media quota is used up.
NOTE: thumbnails are not uploaded; Android also copies a ``_thumbnail`` object per attachment.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from reference_app.archive_client import ArchiveClient
from reference_app.errors import AppError, Forbidden, PayloadTooLarge
from reference_app.export import ExportStats
from reference_app.media import encrypt_attachment, encrypted_size
from reference_app.media_copy import CopyMediaRequest, media_name

if TYPE_CHECKING:
    from reference_app.app import App

log = logging.getLogger(__name__)

MEDIA_TIER_CDN = 3


class MediaTierSync:
    def __init__(self, app: App, client: ArchiveClient):
        self.app = app
        self.client = client

    def run(self, stats: ExportStats) -> None:
        try:
            copied = self._copy(stats)
            deleted = self._delete_orphans(stats)
        except Forbidden as error:
            self._downgrade(error)
            return
        except PayloadTooLarge as error:
            self._record_error(f"backup storage full: {error}")
            log.error("media upload failed reason=storage-full: %s", error)
            return
        except AppError as error:
            log.error("media upload failed reason=error: %s", error)
            return
        log.info("media copied count=%d", copied)
        log.info("orphans deleted count=%d", deleted)

    def _rows(self, stats: ExportStats):
        ids = [entry.attachment_id for entry in stats.attachments]
        if not ids:
            return []
        marks = ",".join("?" for _ in ids)
        return self.app.store.query(
            f"SELECT * FROM attachments WHERE id IN ({marks}) AND plaintext_hash IS NOT NULL AND key IS NOT NULL",  # noqa: S608
            tuple(ids),
        )

    def _copy(self, stats: ExportStats) -> int:
        media_root_key = self.app.keystore.media_root_key
        pending = []
        for row in self._rows(stats):
            if row["media_tier_cdn_number"] is not None or not self.app.files.exists(row["local_file"]):
                continue
            if row["transit_cdn_key"] is None:
                self._upload_transit(row)
                row = self.app.store.query_one("SELECT * FROM attachments WHERE id = ?", (row["id"],))
            pending.append((row, self._request(media_root_key, row)))
        if not pending:
            return 0
        results = self.client.copy_media_batch([request for _, request in pending])
        copied = 0
        for (row, request), result in zip(pending, results, strict=True):
            if result.status == 410:
                self._upload_transit(row)
                row = self.app.store.query_one("SELECT * FROM attachments WHERE id = ?", (row["id"],))
                result = self.client.copy_media(self._request(media_root_key, row))
            if result.status == 413:
                raise PayloadTooLarge(413, "PUT /v1/archives/media/batch", result.failure_reason)
            if not result.ok:
                log.warning("media copy failed status=%d reason=%s", result.status, result.failure_reason)
                continue
            self._mark_copied(row["id"], result.cdn or MEDIA_TIER_CDN)
            copied += 1
        return copied

    def _request(self, media_root_key: bytes, row) -> CopyMediaRequest:
        return CopyMediaRequest.for_media_name(
            media_root_key,
            media_name(bytes(row["plaintext_hash"]), bytes(row["key"])),
            source_cdn=int(row["transit_cdn_number"]),
            source_key=row["transit_cdn_key"],
            object_length=encrypted_size(int(row["size"])),
        )

    def _upload_transit(self, row) -> None:
        """Upload the attachment to the transit tier through the media upload form."""
        plaintext = self.app.files.read(row["local_file"])
        result = self.client.upload_transit_media(encrypt_attachment(plaintext, bytes(row["key"])))
        now = self.app.clock.now_ms()
        with self.app.store.transaction() as db:
            db.execute(
                "UPDATE attachments SET transit_cdn_key = ?, transit_cdn_number = ?, transit_upload_ms = ? WHERE id = ?",
                (result.key, result.cdn, now, row["id"]),
            )

    def _mark_copied(self, attachment_id: int, cdn: int) -> None:
        with self.app.store.transaction() as db:
            db.execute("UPDATE attachments SET media_tier_cdn_number = ? WHERE id = ?", (cdn, attachment_id))

    def _delete_orphans(self, stats: ExportStats) -> int:
        """Delete media tier objects that the uploaded archive does not reference."""
        from harness import keys

        media_root_key = self.app.keystore.media_root_key
        expected = {
            keys.derive_media_id(media_root_key, media_name(bytes(row["plaintext_hash"]), bytes(row["key"])))
            for row in self._rows(stats)
        }
        orphans = [(item.cdn, item.media_id) for item in self.client.iter_media() if item.media_id not in expected]
        if orphans:
            self.client.delete_media(orphans)
        return len(orphans)

    def _downgrade(self, error: Exception) -> None:
        settings = self.app.settings
        with settings.lock:
            settings.value.backups.tier = "free"
            settings.value.backups.downgraded = True
            settings.value.backups.error = "backup expired and downgraded to the free tier"
            settings.save()
        log.warning("tier downgraded to free: %s", error)

    def _record_error(self, message: str) -> None:
        with self.app.settings.lock:
            self.app.settings.value.backups.error = message
            self.app.settings.save()
