"""The reference app's exclusion decisions and daily schedule, as pure functions."""

from __future__ import annotations

import datetime
import zoneinfo

import pytest

from reference_app.defects import DEFECTS, Defects, UnknownDefectError
from reference_app.exclusion import EXPIRATION_CUTOFF_MS, decide, effective_start
from reference_app.schedule import next_backup_time

T = 1_740_000_000_000
D = EXPIRATION_CUTOFF_MS
NO_DEFECTS = Defects()


def item(**fields):
    row = {
        "story_type": 0,
        "parent_story_id": None,
        "deleted_local": 0,
        "kind": "standard",
        "update_kind": None,
        "direction": "incoming",
        "read": 0,
        "send_unsettled": 0,
        "date_sent": T - 1000,
        "date_received": T - 1000,
        "expires_in_ms": None,
        "expire_start_ms": None,
    }
    row.update(fields)
    return row


def keep(row, policy="android", defects=NO_DEFECTS, in_group=False):
    return decide(row, T, policy, defects, in_group=in_group).keep


def test_no_timer_kept():
    assert keep(item())


@pytest.mark.parametrize("timer, kept", [(1, False), (D - 1, False), (D, False), (D + 1, True)])
def test_short_timer_boundary_unstarted(timer, kept):
    assert keep(item(expires_in_ms=timer)) is kept


def test_short_timer_excluded_even_when_started():
    assert not keep(item(expires_in_ms=D, expire_start_ms=T))


@pytest.mark.parametrize(
    "policy, offset, kept",
    [("android", 0, True), ("ios", 0, False), ("android", -1, False), ("ios", 1, True), ("android", 1, True)],
)
def test_expiring_boundary_by_policy(policy, offset, kept):
    # expiresAt = start + timer = T + D + offset
    row = item(expires_in_ms=2 * D, expire_start_ms=T - D + offset, read=1)
    assert keep(row, policy) is kept


def test_unstarted_long_timer_kept_without_start():
    decision = decide(item(expires_in_ms=7 * D), T, "android", NO_DEFECTS, in_group=False)
    assert decision.keep
    assert decision.expire_start_ms is None
    assert decision.expires_in_ms == 7 * D


def test_read_incoming_timer_repaired_from_received():
    row = item(expires_in_ms=7 * D, read=1, date_received=T - 6 * D - 1)
    assert effective_start(row) == T - 6 * D - 1
    assert not keep(row)


def test_outgoing_sent_timer_repaired_but_pending_not():
    sent = item(direction="outgoing", expires_in_ms=2 * D, date_received=T - 2 * D)
    pending = item(direction="outgoing", expires_in_ms=2 * D, date_received=T - 2 * D, send_unsettled=1)
    assert not keep(sent)
    assert keep(pending)


@pytest.mark.parametrize(
    "fields",
    [{"read": 1}, {"direction": "outgoing"}],
    ids=["incoming read", "outgoing sent"],
)
def test_ios_policy_keeps_unrepaired_timer_unstarted(fields):
    row = item(expires_in_ms=2 * D, date_received=T - 2 * D, **fields)
    decision = decide(row, T, "ios", NO_DEFECTS, in_group=False)
    assert decision.keep
    assert decision.expire_start_ms is None
    assert effective_start(row, "ios") is None
    assert effective_start(row, "android") == T - 2 * D


def test_timer_change_update_exempt_and_cleared():
    decision = decide(
        item(kind="update", update_kind="expiration_timer_change", direction="directionless", expires_in_ms=1000),
        T,
        "android",
        NO_DEFECTS,
        in_group=False,
    )
    assert decision.keep
    assert decision.expires_in_ms is None


def test_view_once_tombstoned():
    decision = decide(item(kind="view_once"), T, "android", NO_DEFECTS, in_group=False)
    assert decision.keep
    assert decision.tombstone


def test_stories_and_group_story_replies_dropped():
    assert not keep(item(story_type=1))
    assert not keep(item(parent_story_id=5), in_group=True)
    assert keep(item(parent_story_id=5), in_group=False)


def test_deleted_dropped_unless_defect():
    assert not keep(item(deleted_local=1))
    assert keep(item(deleted_local=1), defects=Defects(["keeps-deleted"]))


@pytest.mark.parametrize(
    "defect, row, kept",
    [
        ("keeps-short-timers", item(expires_in_ms=D), True),
        ("ignores-time-left", item(expires_in_ms=2 * D, expire_start_ms=T - 2 * D + 1), True),
        ("over-excludes", item(expires_in_ms=30 * D, expire_start_ms=T), False),
    ],
)
def test_exclusion_defects(defect, row, kept):
    assert keep(row) is not kept
    assert keep(row, defects=Defects([defect])) is kept


def test_unknown_policy_rejected():
    with pytest.raises(ValueError, match="unknown boundary policy"):
        decide(item(), T, "desktop", NO_DEFECTS, in_group=False)


def test_unknown_defect_lists_names():
    with pytest.raises(UnknownDefectError, match="valid names: .*bad-mac"):
        Defects(["bad-mack"])


def test_every_defect_has_a_description():
    assert all(text and "\n" not in text for text in DEFECTS.values())
    assert len(DEFECTS) >= 16


def local_ms(text: str, zone: str = "UTC") -> int:
    moment = datetime.datetime.fromisoformat(text).replace(tzinfo=zoneinfo.ZoneInfo(zone))
    return int(moment.timestamp() * 1000)


@pytest.mark.parametrize(
    "now, expected",
    [
        ("2025-03-01T02:54:59", "2025-03-01T03:00:00"),
        ("2025-03-01T02:55:00", "2025-03-02T03:00:00"),
        ("2025-03-01T10:00:00", "2025-03-02T03:00:00"),
    ],
)
def test_next_run_five_minute_lead(now, expected):
    zone = zoneinfo.ZoneInfo("UTC")
    assert next_backup_time(local_ms(now), 3, 0, zone, 0) == local_ms(expected)


def test_next_run_in_local_time_across_dst():
    zone = zoneinfo.ZoneInfo("Europe/Berlin")
    # The night Berlin moves to summer time: 02:00 local does not exist, 03:00 becomes 03:00 CEST.
    result = next_backup_time(local_ms("2025-03-29T12:00:00", "Europe/Berlin"), 3, 0, zone, 0)
    assert datetime.datetime.fromtimestamp(result / 1000, zone).hour == 3


def test_next_run_jitter_applies():
    zone = zoneinfo.ZoneInfo("UTC")
    base = next_backup_time(local_ms("2025-03-01T10:00:00"), 2, 0, zone, 0)
    assert next_backup_time(local_ms("2025-03-01T10:00:00"), 2, 0, zone, -300_000) == base - 300_000


def test_every_defect_has_a_behaviour_test():
    from pathlib import Path

    text = (Path(__file__).parent / "test_reference_app_defects.py").read_text(encoding="utf-8")
    untested = [name for name in DEFECTS if f'"{name}"' not in text]
    assert untested == []
