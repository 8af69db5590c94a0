"""Exclusion of disappearing messages from a remote backup.

A remote backup leaves out every message whose timer is 24 h or shorter, started or not, and
every started message that expires within 24 h of the backup time. A timer over 24 h that has
not started is kept. The backup time is ``BackupInfo.backupTimeMs`` unless the caller gives
one. Expiration-timer-change updates are exempt.

Under the android policy a timer that should have started (a read incoming message, an
outgoing one with no pending or failed send status) counts as started at the time received,
as Android's exporter repairs it; iOS keeps such a message unstarted. libsignal rejects an
archive with such an unstarted timer either way; the structure rule reports that.
"""

from __future__ import annotations

from harness.model import BackupInfoRecord, ChatItemRecord
from harness.rules.base import Rule
from harness.rules.constants import DAY_MS, POLICIES

# A timer "should have started" once an incoming message is read, or once an outgoing message
# has no send status left pending or failed (libsignal validation; Android repairs such items).
UNSETTLED_SEND_STATUSES = frozenset({"pending", "failed"})


def format_duration(milliseconds: int) -> str:
    """Render a timer as hours, or seconds below an hour: "3 h", "90 s"."""
    if milliseconds >= 3_600_000 and milliseconds % 3_600_000 == 0:
        return f"{milliseconds // 3_600_000} h"
    if milliseconds >= 3_600_000:
        return f"{milliseconds / 3_600_000:.2f} h"
    return f"{milliseconds / 1000:g} s"


def is_timer_change_update(record: ChatItemRecord) -> bool:
    if record.kind != "update" or not record.update_kind:
        return False
    return record.update_kind.replace("_", "").lower() == "expirationtimerchange"


def timer_should_have_started(record: ChatItemRecord) -> bool:
    if record.direction == "incoming":
        return record.read
    if record.direction == "outgoing":
        return not UNSETTLED_SEND_STATUSES.intersection(record.send_statuses)
    return False


class ExclusionRule(Rule):
    """Find disappearing messages that a remote backup must not contain.

    ``policy`` picks the boundary of a started timer: "android" keeps a message that expires
    exactly 24 h after the backup time, "ios" drops it. ``backup_time_ms`` overrides the
    archive's own backup time.
    """

    def __init__(self, policy: str = "android", backup_time_ms: int | None = None) -> None:
        super().__init__()
        if policy not in POLICIES:
            raise ValueError(f"unknown boundary policy {policy!r}; expected one of {POLICIES}")
        self.policy = policy
        self.backup_time_ms = backup_time_ms
        self._warned_no_time = False

    def backup_info(self, record: BackupInfoRecord) -> None:
        if self.backup_time_ms is None and record.backup_time_ms > 0:
            self.backup_time_ms = record.backup_time_ms

    def chat_item(self, record: ChatItemRecord) -> None:
        expires_in = record.expires_in_ms
        if not expires_in or is_timer_change_update(record):
            return
        if expires_in <= DAY_MS:
            self.report_item(
                record,
                "exclusion.short-timer",
                f"message with a {format_duration(expires_in)} disappearing timer is present "
                "(timers of 24 h or less are never backed up)",
            )
            return
        start = record.expire_start_ms
        repaired = False
        if start is None and self.policy == "android" and timer_should_have_started(record):
            start = record.date_received or record.date_sent
            repaired = True
        if start is not None:
            self._check_started(record, start + expires_in, repaired)

    def _check_started(self, record: ChatItemRecord, expires_at: int, repaired: bool) -> None:
        if self.backup_time_ms is None:
            if not self._warned_no_time:
                self._warned_no_time = True
                self.report(
                    "exclusion.no-backup-time",
                    "the archive has no backup time, so started timers were not checked; "
                    "pass the backup time explicitly",
                    severity="warning",
                )
            return
        cutoff = self.backup_time_ms + DAY_MS
        excluded = expires_at < cutoff if self.policy == "android" else expires_at <= cutoff
        if excluded:
            left_ms = expires_at - self.backup_time_ms
            when = (
                f"{format_duration(left_ms)} after the backup time"
                if left_ms >= 0
                else f"{format_duration(-left_ms)} before the backup time"
            )
            counted = " (timer counted from the time received)" if repaired else ""
            self.report_item(
                record,
                "exclusion.expires-within-24h",
                f"message expires {when}{counted} and should have been left out "
                f"({self.policy} boundary)",
            )
