"""The expiration worker: deletes what was not refreshed in time, by the stub clock.

Each backup record is checked as upstream's RemoveExpiredBackupsCommand does. A record whose
refresh time is older than ``backup_grace_days`` loses everything (objects and record).
Otherwise, a record whose media refresh time is older than ``media_grace_days`` loses its
media: it gets a new media directory, zero usage and no media refresh time. Records that never had a media refresh
(free-level only) are never media-expired. In addition the stub deletes transit attachments
older than ``free_tier_media_days`` and unfinished uploads past their expiry.
"""

from __future__ import annotations

import logging
from typing import Any

from server_stub.clock import DAY
from server_stub.state import StubState

log = logging.getLogger(__name__)


def run_expiry(state: StubState) -> dict[str, Any]:
    """Run one pass and return what it removed."""
    now = state.clock.now()
    backup_cutoff = now - state.config.backup_grace_days * DAY
    media_cutoff = now - state.config.media_grace_days * DAY
    summary: dict[str, Any] = {
        "now": now,
        "backups_deleted": [],
        "media_expired": [],
        "transit_deleted": 0,
        "uploads_expired": 0,
    }
    for record in state.db.list_backups():
        if record.refreshed_at is None or record.refreshed_at < backup_cutoff:
            state.objects.delete_tree(f"backups/{record.backup_dir}")
            state.db.delete_backup(record.hashed_id)
            summary["backups_deleted"].append(record.hashed_id.hex())
        elif record.media_refreshed_at is not None and record.media_refreshed_at < media_cutoff:
            state.objects.delete_tree(f"backups/{record.backup_dir}/{record.media_dir}")
            state.db.reset_media(record.hashed_id)
            summary["media_expired"].append(record.hashed_id.hex())
    for key in state.db.transit_objects_before(int(now - state.config.free_tier_media_days * DAY)):
        state.objects.delete(f"attachments/{key}")
        state.db.delete_transit_object(key)
        summary["transit_deleted"] += 1
    summary["uploads_expired"] = state.uploads.expire(now)
    log.info(
        "expiration pass: %d backups deleted, %d media directories expired, %d transit objects and "
        "%d uploads removed",
        len(summary["backups_deleted"]),
        len(summary["media_expired"]),
        summary["transit_deleted"],
        summary["uploads_expired"],
    )
    return summary
