"""Upload attachments the app holds to the transit tier, as sending a message does.

Every attachment with its plaintext on the device and no transit locator yet is encrypted
and uploaded through ``GET /v4/attachments/form/upload`` (account auth) and TUS. The archive
of the free tier then points at it (``transitCdnKey``, ``transitCdnNumber`` and
``transitTierUploadTimestamp``). A scenario can declare an older upload time
(``pending_upload_ms``); that time is recorded instead of the device clock.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from reference_app.backup_job import BackupFailure
from reference_app.errors import AppError
from reference_app.media import TransitClient, encrypt_attachment

if TYPE_CHECKING:
    from reference_app.app import App

log = logging.getLogger(__name__)


def defect_extras(app: App, row) -> dict[str, dict[str, str]]:
    """Return what the planted defects add to an upload form request: query and headers."""
    extras: dict[str, dict[str, str]] = {}
    if app.defects.active("filename-in-upload-form") and row["file_name"]:
        extras["extra_params"] = {"fileName": row["file_name"]}
    if app.defects.active("zk-auth-on-account-routes") and app.settings.value.backups.initialized:
        try:
            extras["extra_headers"] = app.backups.client().presentation_headers()
        except (AppError, BackupFailure) as error:
            log.warning("no credential presentation for the upload form: %s", error)
    return extras


def upload_pending(app: App) -> dict[str, int]:
    """Upload every attachment that has no transit locator; return counts."""
    rows = app.store.query(
        "SELECT id, key, local_file, pending_upload_ms, file_name FROM attachments "
        "WHERE transit_cdn_key IS NULL AND local_file IS NOT NULL AND key IS NOT NULL AND LENGTH(key) > 0"
    )
    if not rows:
        return {"uploaded": 0, "failed": 0}
    try:
        url, _ = app.backups.server()
        auth = app.backups.account_auth()
    except BackupFailure as error:
        log.info("attachment uploads postponed: %s", error)
        return {"uploaded": 0, "failed": len(rows)}
    client = TransitClient(url, auth)
    uploaded = failed = 0
    try:
        for row in rows:
            if not app.files.exists(row["local_file"]):
                continue
            try:
                encrypted = encrypt_attachment(app.files.read(row["local_file"]), bytes(row["key"]))
                result = client.upload(encrypted, **defect_extras(app, row))
            except AppError as error:
                failed += 1
                log.warning("attachment upload failed id=%d: %s", row["id"], error)
                continue
            upload_ms = row["pending_upload_ms"] if row["pending_upload_ms"] is not None else app.clock.now_ms()
            with app.store.transaction() as db:
                db.execute(
                    "UPDATE attachments SET transit_cdn_key = ?, transit_cdn_number = ?, transit_upload_ms = ?, "
                    "pending_upload_ms = NULL WHERE id = ?",
                    (result.cdn_key, result.cdn_number, upload_ms, row["id"]),
                )
            uploaded += 1
    finally:
        client.close()
    log.info("attachments uploaded count=%d failed=%d", uploaded, failed)
    return {"uploaded": uploaded, "failed": failed}
