"""Daily replacement: over four simulated days with messages added and deleted between
backups, the server holds exactly one message backup, and after each day it is that day's
full snapshot: deleted messages are gone, new ones are in, yesterday's bytes are no longer
retrievable, the keep-alive refresh went out every day, and the daily job ran at its
scheduled local time, with jitter.

The module plays the ``daily-replacement`` scenario on the device clock in Europe/Berlin. Each
simulated day first runs up to the daily alarm (the job must fire by itself), then finishes
the day, applies the day's changes and backs up once more; that last archive is the day's
snapshot.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import zoneinfo

import pytest

from device_support import (
    DAY_MS,
    MINUTE_MS,
    archive_object_path,
    download_archive,
    expected_fate,
    find_item,
    read_archive,
    require_action,
    resolved_scenario,
)

TIMEZONE = "Europe/Berlin"
# The alarm is jittered uniformly within a 10-minute window centred on the slot (Android
# MessageBackupListener, BACKUP_JITTER_WINDOW_SECONDS = 600).
JITTER_MS = 5 * MINUTE_MS
# How late after its alarm a scheduled job may start (the app reacts to the clock jump).
START_LATENESS_MS = MINUTE_MS
LOG_TIME = re.compile(r"^(\S+Z) ")


def log_time_ms(text: str) -> int:
    stamp = LOG_TIME.match(text)
    assert stamp, f"log line without a device time: {text!r}"
    return int(datetime.datetime.fromisoformat(stamp.group(1).replace("Z", "+00:00")).timestamp() * 1000)


class Days:
    """Plays the scenario steps and keeps what each day left behind."""

    def __init__(self, request, stub, target, clock, account, policy, folder):
        self.request, self.stub, self.target, self.clock = request, stub, target, clock
        self.account, self.policy, self.folder = account, policy, folder
        self.recovery_key = None
        self.alive: dict[str, dict] = {}
        self.deleted: set[str] = set()
        self.snapshots: list[dict] = []
        self.alarms: list[dict] = []
        self.manual_results = []

    def play(self, resolved) -> None:
        self.clock.set(resolved["now_ms"], TIMEZONE)
        self.recovery_key = self.request.getfixturevalue("recovery_key")
        self.target.load_scenario({**resolved, "steps": []})
        self.alive = {message["id"]: message for message in resolved["messages"]}
        for step in resolved["steps"]:
            getattr(self, f"step_{step['action']}")(step)

    def step_advance(self, step) -> None:
        end = self.clock.now_ms() + step["delta_ms"]
        status = self.target.backup_status()
        if status.next_backup_ms is not None and status.next_backup_ms <= end:
            self.run_alarm(status)
        remaining = end - self.clock.now_ms()
        if remaining > 0:
            self.clock.advance(remaining)

    def run_alarm(self, status) -> None:
        position = self.target.log_position()
        self.clock.advance(status.next_backup_ms + 1000 - self.clock.now_ms())
        line = self.target.wait_for_log(r"backup (uploaded|failed)", position, 60)
        started = [entry.text for entry in self.target.read_log(position) if "backup started trigger=schedule" in entry.text]
        self.alarms.append(
            {
                "slot_ms": status.next_backup_ms,
                "hour": status.backup_hour,
                "minute": status.backup_minute,
                "started_ms": log_time_ms(started[0]) if started else None,
                "outcome": line.text,
            }
        )

    def step_set(self, step) -> None:
        self.clock.set(step["clock_ms"], TIMEZONE)

    def step_backup(self, step) -> None:
        self.manual_results.append(self.target.back_up_now())

    def step_add_messages(self, step) -> None:
        require_action(self.target, "add_messages")(step["messages"])
        self.alive.update({message["id"]: message for message in step["messages"]})

    def step_delete_messages(self, step) -> None:
        delete = require_action(self.target, "delete_message")
        for message_id in step["ids"]:
            delete(scenario_id=message_id)
            self.alive.pop(message_id, None)
            self.deleted.add(message_id)

    def step_expect(self, step) -> None:
        day = len(self.snapshots)
        path = download_archive(self.stub, self.recovery_key, self.account.aci, self.folder / f"day-{day}.bin")
        view = read_archive(self.target, path, self.recovery_key, self.account.aci, policy=self.policy)
        backup_time = view.info.backup_time_ms
        self.snapshots.append(
            {
                "day": day,
                "view": view,
                "sha256": hashlib.sha256(view.data).hexdigest(),
                "present": list(step["present"]),
                "absent": list(step["absent"]),
                "deleted": set(self.deleted),
                "kept": [m for m in self.alive.values() if expected_fate(m, backup_time, self.policy) != "excluded"],
                "gone": [m for m in self.alive.values() if expected_fate(m, backup_time, self.policy) == "excluded"],
                "removed": [m for i, m in self.all_messages().items() if i in self.deleted],
                "objects": self.stub.admin.objects("backups"),
                "object_path": archive_object_path(self.stub, self.recovery_key, self.account.aci),
                "stub_day": int(self.stub.admin.now()) // 86_400,
            }
        )

    def all_messages(self) -> dict[str, dict]:
        found = dict(self.alive)
        for snapshot in self.snapshots:
            for message in snapshot["kept"] + snapshot["gone"]:
                found.setdefault(message["id"], message)
        return found


@pytest.fixture(scope="module")
def days(request, recorder, stub, target, clock, account, policy, tmp_path_factory):
    played = Days(request, stub, target, clock, account, policy, tmp_path_factory.mktemp("days"))
    played.play(resolved_scenario("daily-replacement", target.clock_ms()))
    played.requests = recorder.requests()
    return played


def test_backups_complete(days):
    for number, result in enumerate(days.manual_results, start=1):
        assert result.ok, f"backup {number} failed: {result.error}"
    for alarm in days.alarms:
        assert "backup uploaded" in alarm["outcome"], f"scheduled backup at {alarm['slot_ms']} failed: {alarm['outcome']}"
    assert len(days.snapshots) == 4, f"expected 4 daily snapshots, got {len(days.snapshots)}"


def test_one_message_backup_per_backup_id(days):
    for snapshot in days.snapshots:
        backups = [entry["path"] for entry in snapshot["objects"] if entry["path"].endswith("/messageBackup")]
        assert backups == [snapshot["object_path"]], (
            f"day {snapshot['day']}: the server holds {len(backups)} message backups: {backups}"
        )


def test_archive_holds_days_messages(days):
    for snapshot in days.snapshots:
        view = snapshot["view"]
        for message in snapshot["kept"]:
            assert find_item(view.items, message) is not None, (
                f"day {snapshot['day']}: message {message['id']} is on the phone but not in that day's archive"
            )
        for message_id in snapshot["present"]:
            message = days.all_messages()[message_id]
            assert find_item(view.items, message) is not None, f"day {snapshot['day']}: expected message {message_id} is missing"


def test_archive_has_nothing_extra(days):
    for snapshot in days.snapshots:
        view = snapshot["view"]
        assert len(view.items) == len(snapshot["kept"]), (
            f"day {snapshot['day']}: the archive holds {len(view.items)} chat items, the phone "
            f"{len(snapshot['kept'])} backed-up messages (an older archive's items appended?)"
        )


def test_deleted_messages_gone(days):
    for snapshot in days.snapshots:
        for message in snapshot["removed"]:
            item = find_item(snapshot["view"].items, message)
            assert item is None, f"day {snapshot['day']}: {item.location()}: message {message['id']} was deleted but is in the archive"


def test_expired_messages_gone(days):
    for snapshot in days.snapshots:
        for message in snapshot["gone"]:
            item = find_item(snapshot["view"].items, message)
            assert item is None, f"day {snapshot['day']}: {item.location()}: message {message['id']} has under 24 h left"


def test_yesterdays_bytes_not_retrievable(days, stub):
    current = {entry["path"]: hashlib.sha256(stub.admin.object_bytes(entry["path"])).hexdigest()
               for entry in stub.admin.objects("backups") if entry["size"] < 50_000_000}
    hashes = [snapshot["sha256"] for snapshot in days.snapshots]
    assert len(set(hashes)) == len(hashes), "two days uploaded byte-identical archives"
    for snapshot in days.snapshots[:-1]:
        holders = [path for path, digest in current.items() if digest == snapshot["sha256"]]
        assert not holders, f"day {snapshot['day']}'s archive is still stored at {holders[0]}"


def test_refresh_sent_each_day(days):
    refreshes = {int(r.time) // 86_400 for r in days.requests if (r.method, r.path) == ("POST", "/v1/archives") and r.status == 204}
    stub_days = sorted({snapshot["stub_day"] for snapshot in days.snapshots})
    missing = [day for day in stub_days[1:] if day not in refreshes]
    assert not missing, f"no keep-alive refresh (POST /v1/archives) on {len(missing)} of {len(stub_days) - 1} days, e.g. UTC day {missing[0]}"


def test_job_runs_at_scheduled_local_time(days):
    assert len(days.alarms) >= 3, f"the daily alarm fired {len(days.alarms)} times over 3 simulated days"
    zone = zoneinfo.ZoneInfo(TIMEZONE)
    for alarm in days.alarms:
        slot = datetime.datetime.fromtimestamp(alarm["slot_ms"] / 1000, tz=zone)
        configured = slot.replace(hour=alarm["hour"], minute=alarm["minute"], second=0, microsecond=0)
        offset_ms = abs((slot - configured).total_seconds() * 1000)
        assert offset_ms <= JITTER_MS, f"alarm at {slot.isoformat()} is {offset_ms / 1000:.0f} s from {alarm['hour']:02d}:{alarm['minute']:02d} local"
        assert alarm["started_ms"] is not None, f"no 'backup started trigger=schedule' line for the alarm at {slot.isoformat()}"
        late = alarm["started_ms"] - alarm["slot_ms"]
        assert 0 <= late <= START_LATENESS_MS, f"the job for the alarm at {slot.isoformat()} started {late / 1000:.1f} s after it"


def test_alarm_is_jittered(days):
    zone = zoneinfo.ZoneInfo(TIMEZONE)
    exact = [
        alarm for alarm in days.alarms
        if datetime.datetime.fromtimestamp(alarm["slot_ms"] / 1000, tz=zone).strftime("%H:%M:%S.%f")
        == f"{alarm['hour']:02d}:{alarm['minute']:02d}:00.000000"
    ]
    assert len(exact) < len(days.alarms), f"all {len(days.alarms)} daily alarms fell exactly on the slot: no jitter"


def test_upload_form_states_archive_size(days):
    """Each upload form request names the exact size of the archive uploaded next (C-12 step 4)."""
    forms = [r for r in days.requests if (r.method, r.path) == ("GET", "/v1/archives/upload/form")]
    assert forms, "no upload form request was recorded"
    uploads = [r for r in days.requests if r.method == "PATCH" and r.path.endswith("/messageBackup")]
    for form in forms:
        values = form.query_values().get("uploadLength")
        assert values, f"{form.location()}: no uploadLength query parameter"
        following = next((upload for upload in uploads if upload.id > form.id), None)
        if following is not None and following.header("upload-length") is not None:
            assert int(values[0]) == int(following.header("upload-length")), (
                f"{form.location()}: uploadLength={values[0]}, but request #{following.id} uploaded "
                f"{following.header('upload-length')} bytes"
            )
