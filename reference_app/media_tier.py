"""Paid tier: copy every backed-up attachment and its thumbnail into the media tier, then delete orphans.

For each attachment the archive points to (and whose plaintext is on the device), the app
derives the media name (hex of plaintext SHA-256 || attachment key), the mediaId and the
copy keys from the media root key, then requests the server to copy the attachment's transit
object into the media tier (``PUT /v1/archives/media/batch``). A transit object that is gone
(410) is uploaded again through the media upload form and copied once more.

An attachment with a thumbnail on the device also gets a second media object, the thumbnail,
under the media name ``<attachment media name>_thumbnail``. The thumbnail is encrypted with
the thumbnail transit key, uploaded through the media upload form and TUS, and copied in the
same batch with the media keys of its own mediaId (see ``reference_app.thumbnails``).

Afterwards the listing of the media tier is compared with what the archive references, and
objects no archive references are deleted (``POST /v1/archives/media/delete``).

A 403 means the credential level is not PAID any more: the app falls back to the free tier
and flags the downgrade. A 413 means the media quota is used up.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reference_app.archive_client import ArchiveClient
from reference_app.errors import AppError, Forbidden, PayloadTooLarge
from reference_app.export import ExportStats
from reference_app.media import encrypt_attachment, encrypted_size
from reference_app.media_copy import CopyMediaRequest, media_name, thumbnail_media_name
from reference_app.thumbnails import encrypt_thumbnail

if TYPE_CHECKING:
    from reference_app.app import App

log = logging.getLogger(__name__)

MEDIA_TIER_CDN = 3


@dataclass(frozen=True)
class PendingCopy:
    """One copy to request: an attachment's, or (``thumbnail``) its thumbnail's."""

    row: sqlite3.Row
    thumbnail: bool
    request: CopyMediaRequest


def attachment_media_name(row: sqlite3.Row) -> str:
    return media_name(bytes(row["plaintext_hash"]), bytes(row["key"]))


class MediaTierSync:
    def __init__(self, app: App, client: ArchiveClient):
        self.app = app
        self.client = client

    def run(self, stats: ExportStats) -> None:
        try:
            copied, thumbnails = self._copy(stats)
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
        log.info("media copied count=%d thumbnails=%d", copied, thumbnails)
        log.info("orphans deleted count=%d", deleted)

    def _rows(self, stats: ExportStats):
        if self.app.defects.active("copies-excluded-media"):
            return self.app.store.query("SELECT * FROM attachments WHERE plaintext_hash IS NOT NULL AND key IS NOT NULL")
        ids = [entry.attachment_id for entry in stats.attachments]
        if not ids:
            return []
        marks = ",".join("?" for _ in ids)
        return self.app.store.query(
            f"SELECT * FROM attachments WHERE id IN ({marks}) AND plaintext_hash IS NOT NULL AND key IS NOT NULL",  # noqa: S608
            tuple(ids),
        )

    def _copy(self, stats: ExportStats) -> tuple[int, int]:
        """Copy what is not in the media tier yet; return (attachments, thumbnails) copied."""
        pending = self._pending_copies(stats)
        if not pending:
            return 0, 0
        results = self.client.copy_media_batch([copy.request for copy in pending])
        copied = {False: 0, True: 0}
        for copy, result in zip(pending, results, strict=True):
            if result.status == 410:
                result = self.client.copy_media(self._upload_again(copy))
            if result.status == 413:
                raise PayloadTooLarge(413, "PUT /v1/archives/media/batch", result.failure_reason)
            if not result.ok:
                log.warning(
                    "media copy failed status=%d thumbnail=%s reason=%s", result.status, copy.thumbnail, result.failure_reason
                )
                continue
            self._mark_copied(copy, result.cdn or MEDIA_TIER_CDN)
            copied[copy.thumbnail] += 1
        return copied[False], copied[True]

    def _pending_copies(self, stats: ExportStats) -> list[PendingCopy]:
        """Upload what needs a transit object and return the copies, each thumbnail after its attachment."""
        media_root_key = self.app.keystore.media_root_key
        copy_thumbnails = not self.app.defects.active("skips-thumbnails")
        pending = []
        for row in self._rows(stats):
            if row["media_tier_cdn_number"] is None and self.app.files.exists(row["local_file"]):
                if row["transit_cdn_key"] is None:
                    row = self._upload_transit(row)
                pending.append(PendingCopy(row, False, self._request(media_root_key, row)))
            if copy_thumbnails and row["thumbnail_media_tier_cdn_number"] is None and self.app.files.exists(row["thumbnail_file"]):
                pending.append(PendingCopy(row, True, self._upload_thumbnail(media_root_key, row)))
        return pending

    def _upload_again(self, copy: PendingCopy) -> CopyMediaRequest:
        """Upload the transit object of a copy that returned 410 again; return the new request."""
        media_root_key = self.app.keystore.media_root_key
        if copy.thumbnail:
            return self._upload_thumbnail(media_root_key, copy.row)
        return self._request(media_root_key, self._upload_transit(copy.row))

    def _request(self, media_root_key: bytes, row) -> CopyMediaRequest:
        request = CopyMediaRequest.for_media_name(
            media_root_key,
            attachment_media_name(row),
            source_cdn=int(row["transit_cdn_number"]),
            source_key=row["transit_cdn_key"],
            object_length=encrypted_size(int(row["size"])),
        )
        if self.app.defects.active("swapped-media-keys"):
            return dataclasses.replace(request, hmac_key=request.encryption_key, encryption_key=request.hmac_key)
        return request

    def _upload_transit(self, row):
        """Upload the attachment to the transit tier through the media upload form; return the updated row."""
        plaintext = self.app.files.read(row["local_file"])
        result = self.client.upload_transit_media(encrypt_attachment(plaintext, bytes(row["key"])))
        now = self.app.clock.now_ms()
        with self.app.store.transaction() as db:
            db.execute(
                "UPDATE attachments SET transit_cdn_key = ?, transit_cdn_number = ?, transit_upload_ms = ? WHERE id = ?",
                (result.key, result.cdn, now, row["id"]),
            )
        return self.app.store.query_one("SELECT * FROM attachments WHERE id = ?", (row["id"],))

    def _upload_thumbnail(self, media_root_key: bytes, row) -> CopyMediaRequest:
        """Encrypt the thumbnail, upload it through the media upload form and return its copy request."""
        name = attachment_media_name(row)
        encrypted = encrypt_thumbnail(self.app.files.read(row["thumbnail_file"]), media_root_key, name)
        result = self.client.upload_transit_media(encrypted)
        return CopyMediaRequest.for_media_name(
            media_root_key,
            thumbnail_media_name(name),
            source_cdn=result.cdn,
            source_key=result.key,
            object_length=len(encrypted),
        )

    def _mark_copied(self, copy: PendingCopy, cdn: int) -> None:
        column = "thumbnail_media_tier_cdn_number" if copy.thumbnail else "media_tier_cdn_number"
        with self.app.store.transaction() as db:
            db.execute(f"UPDATE attachments SET {column} = ? WHERE id = ?", (cdn, copy.row["id"]))  # noqa: S608

    def _delete_orphans(self, stats: ExportStats) -> int:
        """Delete media tier objects that the uploaded archive does not reference."""
        from harness import keys

        media_root_key = self.app.keystore.media_root_key
        expected = set()
        for row in self._rows(stats):
            name = attachment_media_name(row)
            expected.add(keys.derive_media_id(media_root_key, name))
            if row["thumbnail_file"] is not None or row["thumbnail_media_tier_cdn_number"] is not None:
                expected.add(keys.derive_media_id(media_root_key, thumbnail_media_name(name)))
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
