"""The daily backup alarm and the daily keep-alive refresh, on the device clock.

Next run (Signal-Android MessageBackupListener): the user's backup time, device-local, with a
uniform jitter of up to 5 minutes either side (a 600-second window centred on the slot). If
``now + 5 minutes`` is not before today's slot, the next run is tomorrow's slot. A stored
next time more than 2 days ahead is recomputed. A missed alarm fires once, however far the
clock jumped. The refresh runs at most once a day while backups are on.
"""

from __future__ import annotations

import datetime
import logging
import random
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reference_app.app import App

log = logging.getLogger(__name__)

JITTER_WINDOW_MS = 600_000
MIN_LEAD_MS = 300_000
RESCHEDULE_IF_BEYOND_MS = 2 * 86_400_000
REFRESH_INTERVAL_MS = 86_400_000
# A failed refresh is tried again after this much device time.
REFRESH_RETRY_MS = 600_000
# Real seconds the scheduler sleeps at most before it looks at the device clock again.
MAX_WAIT_S = 5.0


def next_backup_time(now_ms: int, hour: int, minute: int, zone: datetime.tzinfo, jitter_ms: int) -> int:
    """Return the next daily run after ``now_ms`` for a slot at hour:minute local time."""
    now = datetime.datetime.fromtimestamp(now_ms / 1000, tz=zone)
    slot = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if now + datetime.timedelta(milliseconds=MIN_LEAD_MS) >= slot:
        slot = (slot + datetime.timedelta(days=1)).replace(hour=hour, minute=minute)
    slot_ms = int(slot.timestamp() * 1000)
    return max(slot_ms + jitter_ms, now_ms + 1)


class Scheduler:
    def __init__(self, app: App, seed: int | None = None):
        self.app = app
        self._random = random.Random(seed)
        self._wake = threading.Condition()
        self._stopped = False
        self._due_lock = threading.Lock()
        self._last_refresh_attempt_ms: int | None = None
        self._thread = threading.Thread(target=self._loop, name="app-scheduler", daemon=True)

    def start(self) -> None:
        self.reschedule(log_it=False)
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify_all()
        self._thread.join(timeout=10)

    def wake(self) -> None:
        """Tell the scheduler the clock or the settings changed."""
        with self._wake:
            self._wake.notify_all()

    def jitter_ms(self) -> int:
        if self.app.defects.active("no-jitter"):
            return 0
        return self._random.randint(-JITTER_WINDOW_MS // 2, JITTER_WINDOW_MS // 2)

    def _zone(self) -> datetime.tzinfo:
        if self.app.defects.active("schedule-in-utc"):
            return datetime.timezone.utc
        return self.app.clock.timezone

    def reschedule(self, log_it: bool = True) -> None:
        """Compute and store the next daily run (none while backups are off)."""
        settings = self.app.settings
        with settings.lock:
            backups = settings.value.backups
            if not backups.enabled:
                backups.next_backup_ms = None
            else:
                backups.next_backup_ms = next_backup_time(
                    self.app.clock.now_ms(), backups.hour, backups.minute, self._zone(), self.jitter_ms()
                )
            settings.save()
        if log_it and backups.next_backup_ms is not None:
            log.info("backup scheduled next_ms=%d", backups.next_backup_ms)
        self.wake()

    def due_jobs(self) -> list[str]:
        """Start the jobs that are due now and return their names."""
        with self._due_lock:
            return self._start_due_jobs()

    def _start_due_jobs(self) -> list[str]:
        backups = self.app.settings.value.backups
        if not backups.enabled:
            return []
        now = self.app.clock.now_ms()
        started = []
        if backups.next_backup_ms is not None and backups.next_backup_ms - now > RESCHEDULE_IF_BEYOND_MS:
            self.reschedule()
        if backups.next_backup_ms is not None and now >= backups.next_backup_ms:
            with self.app.settings.lock:
                backups.next_backup_ms = None  # the job reschedules when it ends
                self.app.settings.save()
            self.app.jobs.submit("backup", lambda: self.app.backups.run("schedule"), coalesce=True)
            started.append("backup")
        refresh_due = backups.last_refresh_ms is None or now - backups.last_refresh_ms >= REFRESH_INTERVAL_MS
        attempted = self._last_refresh_attempt_ms
        recently_tried = attempted is not None and 0 <= now - attempted < REFRESH_RETRY_MS
        if refresh_due and backups.initialized and not recently_tried:
            self._last_refresh_attempt_ms = now
            self.app.jobs.submit("refresh", self.app.backups.refresh, coalesce=True)
            started.append("refresh")
        return started

    def _loop(self) -> None:
        while True:
            with self._wake:
                if self._stopped:
                    return
                self._wake.wait(self._seconds_until_due())
                if self._stopped:
                    return
            try:
                self.due_jobs()
            except Exception:  # noqa: BLE001 - the alarm thread must survive a bug in one run
                log.exception("scheduler failed to start due jobs")

    def _seconds_until_due(self) -> float:
        backups = self.app.settings.value.backups
        if not backups.enabled or backups.next_backup_ms is None:
            return MAX_WAIT_S
        remaining = (backups.next_backup_ms - self.app.clock.now_ms()) / 1000
        return min(MAX_WAIT_S, max(0.0, remaining))
