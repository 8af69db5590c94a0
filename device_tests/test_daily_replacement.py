"""Daily replacement: each day's scheduled backup replaces yesterday's with a full snapshot.

The module runs the daily-replacement scenario over four simulated days. The device is in
India Standard Time (UTC+05:30, no daylight saving time), so a slot computed in UTC instead
of local time is off by a non-whole number of hours. No test requests a backup. Each day the
clock moves to the next daily alarm that the backup screen shows, and the app's own
scheduler starts the job. Messages of a day are added and deleted just before its alarm.

After each day the stub must store exactly one message backup for the backup id, holding
that day's phone content and nothing deleted or carried over, and yesterday's archive bytes
must be gone. The recordings must show a keep-alive refresh (``POST /v1/archives``) within
the day before each run.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import zoneinfo
from typing import Any

import pytest

from device_support import (
    DAY_MS,
    MINUTE_MS,
    archive_object_path,
    download_archive,
    expected_fate,
    read_archive,
    require_action,
    resolved_scenario,
    uploaded_archives,
)
from harness.traffic import RecordedRequest
from suite_support_extra import (
    ScheduledRun,
    advance_to,
    is_refresh,
    item_of,
    nearest_slot,
    next_local_time,
    next_alarm_ms,
    run_scheduled_backup,
    sha256_hex,
    stored_hashes,
)

ZONE = "Asia/Kolkata"
# The jitter window is 10 minutes centred on the slot, so a run starts at most 5 minutes off.
MAX_JITTER_MS = 5 * MINUTE_MS
# Device time a scheduled job may take from its alarm to its "backup started" line.
START_DELAY_MS = MINUTE_MS
# The day's messages are added this long before its alarm, so every one is in the past then.
BEFORE_ALARM_MS = 30_000
# A refresh that the alarm's clock jump starts runs right after the backup and counts for that day.
REFRESH_AFTER_ALARM_MS = 3_600_000


@dataclasses.dataclass
class Day:
    """One simulated day: what the user changes, what the backup must hold, and what happened."""

    number: int
    added: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    deleted: list[str] = dataclasses.field(default_factory=list)
    present: list[str] = dataclasses.field(default_factory=list)
    absent: list[str] = dataclasses.field(default_factory=list)
    run: ScheduledRun | None = None
    archive: Any = None  # the ArchiveView of the stored message backup
    stored: dict[str, str] = dataclasses.field(default_factory=dict)  # object path -> SHA-256
    uploads: list[bytes] = dataclasses.field(default_factory=list)  # archives the stub received that day
    phone: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # messages on the phone at the backup

    def label(self) -> str:
        return f"day {self.number}"


def scenario_days(resolved: dict[str, Any]) -> list[Day]:
    """Split the scenario's steps into days, each ending with its backup and its expectation.

    ``advance`` steps are dropped: the jump to each day's alarm moves the clock instead.
    """
    days: list[Day] = []
    pending = Day(0, added=list(resolved["messages"]))
    for step in resolved["steps"]:
        action = step["action"]
        if action == "add_messages":
            pending.added.extend(step["messages"])
        elif action == "delete_messages":
            pending.deleted.extend(step["ids"])
        elif action == "backup":
            days.append(pending)
            pending = Day(len(days))
        elif action == "expect":
            days[-1].present.extend(step["present"])
            days[-1].absent.extend(step["absent"])
    return days


@pytest.fixture(scope="module", autouse=True)
def device_zone(target, clock):
    """Put the device in a non-UTC zone at local noon before backups are turned on."""
    clock.set(next_local_time(clock.now_ms(), ZONE, 12), ZONE)


@pytest.fixture(scope="module")
def run(recorder, stub, target, account, recovery_key, clock, policy, tmp_path_factory):
    """Four scheduled daily backups of the scenario, with the stub's state after each."""
    status = target.backup_status()
    slot = nearest_slot(next_alarm_ms(target), ZONE, status.backup_hour, status.backup_minute)
    # The scenario clock of day N is 5 minutes before day N's slot: its messages all fall
    # before that day's alarm, wherever the jitter puts it.
    resolved = resolved_scenario("daily-replacement", slot - MAX_JITTER_MS)
    days = scenario_days(resolved)
    assert len(days) >= 4, f"the scenario backs up on {len(days)} day(s); replacement needs day 0 and three more"
    target.load_scenario({**resolved, "messages": []})
    folder = tmp_path_factory.mktemp("daily")
    phone: dict[str, dict[str, Any]] = {}
    for day in days:
        since = recorder.position()
        change_phone(target, clock, day, phone)
        day.run = run_scheduled_backup(target, clock)
        path = download_archive(stub, recovery_key, account.aci, folder / f"day-{day.number}.bin")
        day.archive = read_archive(target, path, recovery_key, account.aci, policy=policy, tier="free")
        day.stored = stored_hashes(stub, "backups/")
        day.uploads = uploaded_archives(recorder.requests(since_id=since, plane="cdn"))
    return {
        "days": days,
        "archive_path": archive_object_path(stub, recovery_key, account.aci),
        "status": target.backup_status(),
        "records": recorder.records(),
    }


def change_phone(target, clock, day: Day, phone: dict[str, dict[str, Any]]) -> None:
    """Add and delete the day's messages shortly before its alarm, and track what ``phone`` keeps."""
    advance_to(clock, next_alarm_ms(target) - BEFORE_ALARM_MS)
    if day.added:
        require_action(target, "add_messages")(day.added)
    phone.update((message["id"], message) for message in day.added)
    for message_id in day.deleted:
        require_action(target, "delete_message")(scenario_id=message_id)
        phone.pop(message_id, None)
    day.phone = list(phone.values())


def local_time(epoch_ms: int) -> str:
    return datetime.datetime.fromtimestamp(epoch_ms / 1000, tz=zoneinfo.ZoneInfo(ZONE)).strftime("%H:%M:%S")


def slot_offset_ms(run, epoch_ms: int) -> int:
    status = run["status"]
    return epoch_ms - nearest_slot(epoch_ms, ZONE, status.backup_hour, status.backup_minute)


def test_runs_at_local_backup_time(run):
    status = run["status"]
    slot = f"{status.backup_hour:02d}:{status.backup_minute:02d}"
    for day in run["days"]:
        assert day.run.trigger in (None, "schedule"), f"{day.label()}: the daily alarm did not start the backup: {day.run.started}"
        # A log without device times (logcat) falls back to the snapshot time of the archive.
        started = day.run.started_ms or day.archive.info.backup_time_ms
        offset = slot_offset_ms(run, started)
        assert -MAX_JITTER_MS <= offset <= MAX_JITTER_MS + START_DELAY_MS, (
            f"{day.label()}: the backup started at {local_time(started)} {ZONE}, {offset / MINUTE_MS:+.1f} min "
            f"from the {slot} slot (allowed: the 10-minute jitter window)"
        )


def test_run_time_jittered(run):
    offsets = [slot_offset_ms(run, day.run.due_ms) for day in run["days"]]
    outside = [(day.label(), offset) for day, offset in zip(run["days"], offsets) if abs(offset) > MAX_JITTER_MS]
    assert not outside, f"{outside[0][0]}: next backup time is {outside[0][1] / MINUTE_MS:+.1f} min from the slot (max ±5 min)"
    assert any(offsets), f"all {len(offsets)} daily backups were scheduled exactly on the slot: no jitter"


def test_one_message_backup_per_backup_id(run):
    expected = run["archive_path"]
    for day in run["days"]:
        archives = [path for path in day.stored if path.endswith("/messageBackup")]
        assert archives == [expected], f"{day.label()}: the stub stores these message backups: {archives}"
        assert day.uploads, f"{day.label()}: the stub received no complete archive upload"
        assert day.stored[expected] == sha256_hex(day.uploads[-1]), (
            f"{day.label()}: {expected} is not the archive uploaded that day"
        )


def test_archive_from_that_days_run(run):
    for day in run["days"]:
        backup_time = day.archive.info.backup_time_ms
        assert day.run.due_ms <= backup_time <= day.run.due_ms + START_DELAY_MS, (
            f"{day.label()}: the stored archive's backupTimeMs {backup_time} is not from that day's run "
            f"(alarm at {day.run.due_ms}); an older snapshot was uploaded"
        )


def test_archive_holds_days_state(run):
    for day in run["days"]:
        messages = {message["id"]: message for earlier in run["days"][: day.number + 1] for message in earlier.added}
        for message_id in day.present:
            assert item_of(day.archive.items, messages[message_id]) is not None, (
                f"{day.label()}: message {message_id} is on the phone but missing from the stored archive"
            )
        for message_id in day.absent:
            item = item_of(day.archive.items, messages[message_id])
            assert item is None, f"{day.label()}: {item.location()}: message {message_id} should be gone from the archive"


def test_deleted_messages_gone(run):
    added = {message["id"]: message for day in run["days"] for message in day.added}
    deleted: list[str] = []
    for day in run["days"]:
        deleted.extend(day.deleted)
        for message_id in deleted:
            item = item_of(day.archive.items, added[message_id])
            assert item is None, f"{day.label()}: {item.location()}: message {message_id} was deleted but is in the archive"


def test_no_items_carried_over(run, policy):
    for day in run["days"]:
        backup_time = day.archive.info.backup_time_ms
        expected_items = [message for message in day.phone if expected_fate(message, backup_time, policy) != "excluded"]
        places = collections.Counter((item.chat_id, item.date_sent) for item in day.archive.items)
        repeated = [place for place, count in places.items() if count > 1]
        assert not repeated, f"{day.label()}: chat {repeated[0][0]} holds the item sent at {repeated[0][1]} more than once"
        assert len(day.archive.items) == len(expected_items), (
            f"{day.label()}: the archive holds {len(day.archive.items)} chat items, the phone {len(expected_items)}"
        )


def test_yesterdays_archive_not_retrievable(run):
    days = run["days"]
    for yesterday, today in zip(days, days[1:]):
        old = sha256_hex(yesterday.archive.data)
        copies = [path for path, digest in today.stored.items() if digest == old]
        assert not copies, f"{today.label()}: {copies[0]} still contains the {yesterday.label()} archive"


def test_refreshed_each_day(run):
    times = [request.time * 1000 for request in map(RecordedRequest.from_record, run["records"]) if is_refresh(request)]
    for day in run["days"]:
        due = day.run.due_ms
        window = [time for time in times if due - DAY_MS < time <= due + REFRESH_AFTER_ALARM_MS]
        assert window, f"{day.label()}: no keep-alive refresh (POST /v1/archives) within the day before the backup at {due}"
