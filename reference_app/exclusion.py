"""Which chat items a remote backup leaves out, and the timer values it writes for the rest.

The rules, with the reference time T = the backup's start time (``BackupInfo.backupTimeMs``)
and D = 24 hours (86,400,000 ms, the cutoff Android, iOS and Desktop all use):

* stories are never exported, and replies to a story in a group chat are dropped; direct
  (1:1) story replies are kept (Android and Desktop exporters);
* a disappearing timer of more than 0 and at most D excludes the message, started or not;
* under the android policy a timer that has not started is repaired first, as Android does:
  an outgoing message with no pending or failed send status, and a read incoming message,
  start at ``dateReceived``. iOS has no such repair, so the ios policy leaves them unstarted;
* a started timer excludes the message when it expires within D of T. The boundary differs
  by client: Android drops ``expiresAt < T + D``, iOS and Desktop drop ``expiresAt <= T + D``
  (the ``policy`` option picks one);
* an unstarted timer longer than D is kept without a start time (the receiver starts it);
* expiration-timer-change updates are exempt and are written with their expiry fields cleared;
* view-once messages become tombstones: the item without its attachment, reactions kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reference_app.defects import Defects

# The exclusion cutoff of all three clients (Android EXPIRATION_CUTOFF = 1.days).
EXPIRATION_CUTOFF_MS = 86_400_000
POLICIES = ("android", "ios")


@dataclass(frozen=True)
class Decision:
    """The exporter's decision on one chat item."""

    keep: bool
    reason: str | None = None  # why it was excluded (or tombstoned)
    expires_in_ms: int | None = None  # the values to write; None: field absent
    expire_start_ms: int | None = None
    tombstone: bool = False


def decide(item: Mapping[str, Any], backup_time_ms: int, policy: str, defects: Defects, *, in_group: bool) -> Decision:
    """Apply the remote-backup exclusion rules to one chat item row of the message store."""
    if policy not in POLICIES:
        raise ValueError(f"unknown boundary policy {policy!r}; use android or ios")
    if item["story_type"]:
        return Decision(False, "story")
    if item["parent_story_id"] is not None and in_group:
        return Decision(False, "group story reply")
    if item["deleted_local"] and not defects.active("keeps-deleted"):
        return Decision(False, "deleted")
    tombstone = item["kind"] == "view_once" and not defects.active("keeps-view-once-media")
    expires_in = item["expires_in_ms"]
    if item["kind"] == "update" and item["update_kind"] == "expiration_timer_change":
        return Decision(True)
    if not expires_in:
        # No timer, or a timer of 0 (off): written without expiry fields.
        return Decision(True, "view-once" if tombstone else None, tombstone=tombstone)
    if defects.active("over-excludes"):
        return Decision(False, "disappearing")
    if expires_in <= EXPIRATION_CUTOFF_MS and not defects.active("keeps-short-timers"):
        return Decision(False, "timer of 24 hours or less")
    start = effective_start(item, policy)
    if start is not None and not defects.active("ignores-time-left"):
        expires_at = start + expires_in
        limit = backup_time_ms + EXPIRATION_CUTOFF_MS
        soon = expires_at < limit if policy == "android" else expires_at <= limit
        if soon:
            return Decision(False, "expires within 24 hours")
    return Decision(True, "view-once" if tombstone else None, expires_in, start, tombstone)


def effective_start(item: Mapping[str, Any], policy: str = "android") -> int | None:
    """Return the timer start the export writes.

    Under the android policy a read incoming message, or an outgoing one with no pending or
    failed send status, whose timer never started counts from ``dateReceived``, as Android's
    exporter repairs it. The ios policy writes the stored start only, as iOS does.
    """
    if item["expire_start_ms"] is not None:
        return int(item["expire_start_ms"])
    if policy != "android":
        return None
    received = item["date_received"] if item["date_received"] else item["date_sent"]
    if item["direction"] == "outgoing" and not item["send_unsettled"]:
        return int(received)
    if item["direction"] == "incoming" and item["read"]:
        return int(received)
    return None
