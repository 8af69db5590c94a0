"""Create a new recovery key (key rotation).

The new recovery key and a new media root key are created together (Signal-Android
``stageBackupKeyRotations``). Before offering it the app asks ``GET
/v1/archives/backupid/limits`` whether the server would accept a new backup id now. The
commit then runs in the job queue, so no backup runs halfway through it: reset the setup
flag and the cached credentials, store both new keys, forget which media and thumbnails were
copied (their mediaIds change with the media root key), and start a backup, which commits the
new backup ids, registers the new public keys, uploads a fresh archive and copies all media
again.
The old backup is not deleted by the client; the server expires it.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

from harness import keys
from libsignal_bridge.zk import TYPE_MESSAGES
from reference_app.backup_job import MEDIA_ROOT_KEY_LENGTH, BackupFailure
from reference_app.errors import AppError

if TYPE_CHECKING:
    from reference_app.app import App

log = logging.getLogger(__name__)


class RotationRefused(Exception):
    """The key cannot be rotated now (backups off, or the server asks to wait)."""


def regenerate_recovery_key(app: App) -> str:
    """Rotate the keys and return the new recovery key in display form."""
    backups = app.settings.value.backups
    if not backups.enabled or app.keystore.recovery_key is None:
        raise RotationRefused("backups are turned off; turn them on before creating a new recovery key")
    if backups.initialized:
        client = app.backups.client()
        try:
            permitted, retry_after = client.get_backup_id_limits()
        except AppError as error:
            raise RotationRefused(f"cannot check whether a new key is allowed now: {error}") from None
        if not permitted:
            raise RotationRefused(f"the server allows a new recovery key again in {retry_after} s; try later")
    new_key = keys.generate_recovery_key()
    keep_media_key = app.defects.active("rotation-keeps-media-key")
    new_media_root_key = app.keystore.media_root_key if keep_media_key else secrets.token_bytes(MEDIA_ROOT_KEY_LENGTH)
    future = app.jobs.submit("rotate-key", lambda: _commit(app, new_key, new_media_root_key))
    future.result()
    app.jobs.submit("backup", lambda: app.backups.run("key-rotation"), coalesce=True)
    return keys.display_recovery_key(new_key)


def _commit(app: App, recovery_key: str, media_root_key: bytes) -> None:
    if app.defects.active("rotation-deletes-old-backup"):
        try:
            app.backups.client().delete_backup(TYPE_MESSAGES)
        except (AppError, BackupFailure) as error:
            log.warning("deleting the old backup failed: %s", error)
    if app.defects.active("rotation-keeps-archive-key") or app.defects.active("rotation-keeps-backup-id"):
        app.backups.previous_recovery_key = app.keystore.recovery_key
    settings = app.settings
    with settings.lock:
        settings.value.backups.initialized = False
        settings.save()
    try:
        app.backups.client().clear_credentials()
    except BackupFailure:
        pass
    app.backups.close_client()
    app.keystore.store(recovery_key=recovery_key, media_root_key=media_root_key)
    with app.store.transaction() as db:
        db.execute("UPDATE attachments SET media_tier_cdn_number = NULL, thumbnail_media_tier_cdn_number = NULL")
    app.backups.discard_export()
    app.plant_key_defects(recovery_key)
    log.info("recovery key regenerated")
