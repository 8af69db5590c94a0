"""Helpers of the schedule, media-retention and key-rotation modules of the device suite.

Like ``device_support``, these see the target only through ``harness.targets.base.Target``
(plus the ``add_messages`` scenario action) and the server only through the stub's admin API
and its recordings.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import re
import time
import zoneinfo
from pathlib import Path
from typing import Any

from device_support import (
    JOB_TIMEOUT_S,
    THUMBNAIL_SUFFIX,
    aci_bytes,
    decrypt_layer,
    forward_secrecy_token,
    require_action,
    wait_for_backup,
)
from harness import keys
from harness.device_session import stub_endpoints
from harness.errors import ArchiveError
from harness.frames import open_frames
from harness.targets.base import Account, LogLine, LogPosition, Target
from harness.traffic import RecordedRequest

# Routes only a paid client may use: the media upload form and the copies to the media tier.
MEDIA_TIER_ROUTES = (
    ("GET", "/v1/archives/media/upload/form"),
    ("PUT", "/v1/archives/media"),
    ("PUT", "/v1/archives/media/batch"),
)
# Device time at the start of a log line, in the three forms the targets write.
# The reference app writes ISO 8601 UTC, such as 2024-05-14T02:03:11.250Z.
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z\b")
# The harness's logcat service reads ``-v epoch`` seconds, such as 1715652191.250.
LOGCAT_EPOCH = re.compile(r"^\s*(\d+)\.(\d{3})\s")
# Plain logcat prints the threadtime date, with ``-v year`` (2024-05-14 02:03:11.250) or without (05-14 02:03:11.250).
LOGCAT_DATE = re.compile(r"^(\d{4}-)?(\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\s")
HALF_YEAR_MS = 183 * 86_400_000


# Clock and schedule -----------------------------------------------------------------------------


def advance_to(clock: Any, epoch_ms: int) -> None:
    """Move the suite clock (stub and target) forward to ``epoch_ms``. A time in the past changes nothing."""
    delta = epoch_ms - clock.now_ms()
    if delta > 0:
        clock.advance(delta)


def next_local_time(epoch_ms: int, zone: str, hour: int, minute: int = 0) -> int:
    """Return the first ``hour:minute`` in ``zone`` strictly after ``epoch_ms``."""
    local = datetime.datetime.fromtimestamp(epoch_ms / 1000, tz=zoneinfo.ZoneInfo(zone))
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate <= local:
        candidate = (candidate + datetime.timedelta(days=1)).replace(hour=hour, minute=minute)
    return int(candidate.timestamp() * 1000)


def nearest_slot(epoch_ms: int, zone: str, hour: int, minute: int) -> int:
    """Return the local ``hour:minute`` slot (yesterday, today or tomorrow) closest to ``epoch_ms``."""
    local = datetime.datetime.fromtimestamp(epoch_ms / 1000, tz=zoneinfo.ZoneInfo(zone))
    today = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    candidates = [(today + datetime.timedelta(days=days)).replace(hour=hour, minute=minute) for days in (-1, 0, 1)]
    return min((int(slot.timestamp() * 1000) for slot in candidates), key=lambda slot: abs(slot - epoch_ms))


def log_time_ms(text: str, *, zone: str = "UTC", near_ms: int | None = None) -> int | None:
    """Return the device time at the start of a log line, or None when the line carries none.

    Reads the reference app's ISO 8601 UTC time and logcat's line starts: ``-v epoch`` seconds
    and the threadtime date. Logcat prints that date in the device's time zone unless run
    with ``-v UTC``, so ``zone`` names it. Without ``-v year`` the date has no year: it is
    taken from ``near_ms``, a time the line is known to be within half a year of, and
    without ``near_ms`` such a line gives None.
    """
    match = LOG_TIME.match(text)
    if match is not None:
        moment = datetime.datetime.fromisoformat(match.group(1)).replace(tzinfo=datetime.timezone.utc)
        return int(moment.timestamp() * 1000)
    match = LOGCAT_EPOCH.match(text)
    if match is not None:
        return int(match.group(1)) * 1000 + int(match.group(2))
    match = LOGCAT_DATE.match(text)
    if match is None:
        return None
    return logcat_date_ms(match.group(1), match.group(2), zoneinfo.ZoneInfo(zone), near_ms)


def logcat_date_ms(year: str | None, rest: str, zone: zoneinfo.ZoneInfo, near_ms: int | None) -> int | None:
    """Return the epoch milliseconds of a logcat threadtime date; see ``log_time_ms``."""
    if year is not None:
        return local_ms(year + rest, zone)
    if near_ms is None:
        return None
    near_year = datetime.datetime.fromtimestamp(near_ms / 1000, tz=zone).year
    candidates = [local_ms(f"{candidate}-{rest}", zone) for candidate in (near_year - 1, near_year, near_year + 1)]
    best = min((ms for ms in candidates if ms is not None), key=lambda ms: abs(ms - near_ms), default=None)
    return best if best is not None and abs(best - near_ms) <= HALF_YEAR_MS else None


def local_ms(text: str, zone: zoneinfo.ZoneInfo) -> int | None:
    """Return the epoch milliseconds of ``YYYY-MM-DD hh:mm:ss.mmm`` in ``zone`` (None for 02-29 of a common year)."""
    try:
        moment = datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f")
    except ValueError:
        return None
    return int(moment.replace(tzinfo=zone).timestamp() * 1000)


@dataclasses.dataclass(frozen=True)
class ScheduledRun:
    """One backup the app started on its own when the clock reached its daily alarm."""

    due_ms: int  # next_backup_ms as the backup screen showed it before the clock jump
    started: str  # the "backup started" log line
    ended: str  # the "backup uploaded" log line

    @property
    def started_ms(self) -> int | None:
        return log_time_ms(self.started, near_ms=self.due_ms)

    @property
    def trigger(self) -> str | None:
        """The ``trigger=`` value of the start line (``schedule`` for the alarm), or None when not logged."""
        match = re.search(r"\btrigger=(\S+)", self.started)
        return match.group(1) if match else None


def next_alarm_ms(target: Target) -> int:
    """Return the next daily backup time that the backup screen shows."""
    due = target.backup_status().next_backup_ms
    assert due is not None, "backups are on, but the backup screen shows no next backup time"
    return due


def run_scheduled_backup(target: Target, clock: Any) -> ScheduledRun:
    """Move the clock to the next daily alarm and wait until the backup it starts has uploaded.

    The app's own scheduler starts the job, because nothing here requests a backup.
    """
    due = next_alarm_ms(target)
    position = target.log_position()
    advance_to(clock, due)
    started = target.wait_for_log(r"backup started", position, JOB_TIMEOUT_S)
    ended = wait_for_backup(target, position)
    return ScheduledRun(due, started.text, ended)


def wait_for_log_after(target: Target, pattern: str, since: Any, after_ms: int, timeout: float) -> LogLine:
    """Return the first line after ``since`` that matches ``pattern`` and was logged at or after ``after_ms``.

    A line logged before ``after_ms`` (device time) is skipped: it is the trailing line of an
    earlier event that reached the log after ``since`` was taken, such as the second line of
    a paid refresh. A line without a readable time counts as new.
    """
    deadline = time.monotonic() + timeout
    while True:
        line = target.wait_for_log(pattern, since, max(0.0, deadline - time.monotonic()))
        logged_ms = log_time_ms(line.text, near_ms=after_ms)
        if logged_ms is None or logged_ms >= after_ms:
            return line
        since = position_after(target, line)


def position_after(target: Target, line: LogLine) -> LogPosition:
    """Return the log position just after ``line``.

    The end position is read before the lines, so when no line follows ``line`` among them,
    that end position is just after ``line``.
    """
    end = target.log_position()
    following = target.read_log(line.position)[1:2]
    return following[0].position if following else end


# Scenario loading -------------------------------------------------------------------------------


def upload_time(message: dict[str, Any]) -> int:
    """Return when a message's attachments reached the transit tier (its sent time if it has none)."""
    times = [attachment["uploaded_ms"] for attachment in message["attachments"] if attachment["uploaded_ms"] is not None]
    return min(times) if times else message["sent_ms"]


def load_by_upload_time(target: Target, clock: Any, resolved: dict[str, Any]) -> None:
    """Load a resolved scenario so that the stub stores each attachment at its scenario age.

    The people and chats are loaded first. Then, oldest first, the clock moves to each
    message's upload time, the message is added and its transit upload is awaited. The clock
    ends at the scenario clock. Daily alarms that fall due on the way run as they would.
    """
    first = min((upload_time(message) for message in resolved["messages"]), default=resolved["now_ms"])
    assert first >= clock.now_ms(), "the scenario's oldest upload is before the device clock; resolve it later"
    add_messages = require_action(target, "add_messages")
    target.load_scenario({**resolved, "messages": []})
    for message in sorted(resolved["messages"], key=upload_time):
        advance_to(clock, upload_time(message))
        position = target.log_position()
        add_messages([message])
        if message["attachments"]:
            line = target.wait_for_log(r"attachments uploaded count=\d+ failed=\d+", position, JOB_TIMEOUT_S)
            assert "failed=0" in line.text, f"message {message['id']}: transit upload failed: {line.text}"
    advance_to(clock, resolved["now_ms"])


def reinstall(stub: Any, target: Target, account: Account) -> None:
    """Wipe the app and set it up again for ``account``, as a new phone would be."""
    target.wipe()
    target.start()
    target.point_at(stub_endpoints(stub))
    target.register_account(account)


# Archives, objects and requests -------------------------------------------------------------------


def item_of(items: list[Any], message: dict[str, Any]) -> Any:
    """Return the chat item of a resolved scenario message: same sent time and, if any, same text.

    Exact text keeps "burst message 1" apart from "burst message 10".
    """
    for item in items:
        if item.date_sent == message["sent_ms"] and (message["text"] is None or item.text == message["text"]):
            return item
    return None


def open_error(target: Target, path: Path, recovery_key: str, aci: str) -> str | None:
    """Decrypt the start of an archive with a recovery key and return the error, or None when it opens."""
    normalized = keys.normalize_recovery_key(recovery_key)
    try:
        token = forward_secrecy_token(target, path, normalized)
        with open_frames(path, normalized, aci_bytes(aci), token) as messages:
            next(iter(messages), None)
    except ArchiveError as error:
        return str(error)
    return None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_hashes(stub: Any, prefix: str) -> dict[str, str]:
    """Return the SHA-256 of every object the stub stores under ``prefix``, by object path."""
    return {entry["path"]: sha256_hex(stub.admin.object_bytes(entry["path"])) for entry in stub.admin.objects(prefix)}


def succeeded(request: RecordedRequest) -> bool:
    return request.status is not None and 200 <= request.status < 300


def is_refresh(request: RecordedRequest) -> bool:
    """Return whether a request is an accepted keep-alive refresh (``POST /v1/archives``)."""
    return request.method == "POST" and request.path == "/v1/archives" and succeeded(request)


def upload_completed_id(requests: list[RecordedRequest], backup_dir: str) -> int | None:
    """Return the id of the last accepted TUS request that wrote ``<backup_dir>/messageBackup``."""
    suffix = f"/{backup_dir}/messageBackup"
    ids = [
        request.id
        for request in requests
        if request.plane == "cdn" and request.method in ("POST", "PATCH") and request.path.startswith("/upload/")
        and request.path.endswith(suffix) and succeeded(request)
    ]
    return max(ids, default=None)


# Media tier ---------------------------------------------------------------------------------------


def thumbnail_media_id(media_root_key: bytes, attachment: Any) -> bytes:
    """Return the mediaId of an attachment's thumbnail: its media name plus ``_thumbnail``."""
    return keys.derive_media_id(media_root_key, attachment.media_name() + THUMBNAIL_SUFFIX)


def decrypt_thumbnail_object(blob: bytes, media_root_key: bytes, attachment: Any) -> bytes:
    """Decrypt both layers of a thumbnail in the media tier and return the padded thumbnail.

    The outer layer is the server's, with the keys of the copy request. The inner one is the
    thumbnail's transit encryption. Android passes the 64-byte thumbnail transit key to its
    attachment cipher, which takes the first 32 bytes as the AES key and the last 32 as the
    HMAC key. ``harness.keys`` returns the two halves in derivation order, named hmac and aes.
    """
    media_id = thumbnail_media_id(media_root_key, attachment)
    outer_hmac, outer_aes = keys.derive_media_encryption_key(media_root_key, media_id)
    inner = decrypt_layer(blob, outer_aes, outer_hmac)
    attachment_key = b"".join(keys.derive_thumbnail_transit_key(media_root_key, media_id))
    return decrypt_layer(inner, attachment_key[:32], attachment_key[32:])


def has_thumbnail(attachment: Any) -> bool:
    """Return whether a client makes a thumbnail for an attachment: images and videos."""
    content_type = attachment.content_type or ""
    return content_type.startswith(("image/", "video/"))
