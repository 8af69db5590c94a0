"""Exclusion of disappearing messages (24 h rules, android and ios boundary policies)."""

import pytest

from harness.rules import DAY_MS, ExclusionRule
from rule_records import BACKUP_TIME, DAY, HOUR, backup_info, item, run


def rule_ids(findings):
    return [finding.rule for finding in findings]


def test_day_constant_is_24_hours():
    assert DAY_MS == 86_400_000


@pytest.mark.parametrize("timer", [1, HOUR, DAY])
def test_short_timer_unstarted_reported(timer):
    findings = run(ExclusionRule(), backup_info(), item(57, expires_in_ms=timer))
    assert rule_ids(findings) == ["exclusion.short-timer"]
    assert findings[0].message.startswith("chat 3, item 57: ")


def test_short_timer_started_reported():
    record = item(expires_in_ms=HOUR, expire_start_ms=BACKUP_TIME - 60_000)
    assert rule_ids(run(ExclusionRule(), backup_info(), record)) == ["exclusion.short-timer"]


def test_timer_just_over_day_unstarted_kept():
    assert run(ExclusionRule(), backup_info(), item(expires_in_ms=DAY + 1)) == []


def test_no_timer_kept():
    assert run(ExclusionRule(), backup_info(), item()) == []


def test_zero_timer_ignored():
    assert run(ExclusionRule(), backup_info(), item(expires_in_ms=0)) == []


def test_started_expiring_within_day_reported():
    record = item(expires_in_ms=2 * DAY, expire_start_ms=BACKUP_TIME - DAY - HOUR)
    findings = run(ExclusionRule(), backup_info(), record)
    assert rule_ids(findings) == ["exclusion.expires-within-24h"]
    assert "23 h after the backup time" in findings[0].message


def test_started_already_expired_reported():
    record = item(expires_in_ms=2 * DAY, expire_start_ms=BACKUP_TIME - 3 * DAY)
    findings = run(ExclusionRule(), backup_info(), record)
    assert rule_ids(findings) == ["exclusion.expires-within-24h"]
    assert "before the backup time" in findings[0].message


def test_started_expiring_after_day_kept():
    record = item(expires_in_ms=2 * DAY, expire_start_ms=BACKUP_TIME - DAY + 1000)
    assert run(ExclusionRule(), backup_info(), record) == []


def test_boundary_android_keeps_exact_day():
    record = item(expires_in_ms=2 * DAY, expire_start_ms=BACKUP_TIME - DAY)
    assert run(ExclusionRule("android"), backup_info(), record) == []


def test_boundary_ios_drops_exact_day():
    record = item(expires_in_ms=2 * DAY, expire_start_ms=BACKUP_TIME - DAY)
    findings = run(ExclusionRule("ios"), backup_info(), record)
    assert rule_ids(findings) == ["exclusion.expires-within-24h"]
    assert "ios boundary" in findings[0].message


def test_boundary_one_ms_before_both_drop():
    record = item(expires_in_ms=2 * DAY, expire_start_ms=BACKUP_TIME - DAY - 1)
    assert len(run(ExclusionRule("android"), backup_info(), record)) == 1
    assert len(run(ExclusionRule("ios"), backup_info(), record)) == 1


def test_backup_time_override_wins():
    record = item(expires_in_ms=2 * DAY, expire_start_ms=BACKUP_TIME - DAY + 1000)
    rule = ExclusionRule(backup_time_ms=BACKUP_TIME + HOUR)
    assert rule_ids(run(rule, backup_info(), record)) == ["exclusion.expires-within-24h"]


def test_missing_backup_time_warns_once():
    records = [item(n, expires_in_ms=2 * DAY, expire_start_ms=BACKUP_TIME) for n in (1, 2)]
    findings = run(ExclusionRule(), backup_info(0), *records)
    assert rule_ids(findings) == ["exclusion.no-backup-time"]
    assert findings[0].severity == "warning"


def test_read_incoming_repaired_android():
    # Received 2 days before the backup with a 2 d + 1 h timer: Android starts it at receipt,
    # so it expires 1 h after the backup and must be left out.
    record = item(direction="incoming", read=True, expires_in_ms=2 * DAY + HOUR, date_received=BACKUP_TIME - 2 * DAY)
    findings = run(ExclusionRule("android"), backup_info(), record)
    assert rule_ids(findings) == ["exclusion.expires-within-24h"]
    assert "counted from the time received" in findings[0].message


def test_read_incoming_unstarted_kept_ios():
    record = item(direction="incoming", read=True, expires_in_ms=2 * DAY + HOUR, date_received=BACKUP_TIME - 2 * DAY)
    assert run(ExclusionRule("ios"), backup_info(), record) == []


def test_read_incoming_repaired_far_kept():
    record = item(direction="incoming", read=True, expires_in_ms=7 * DAY, date_received=BACKUP_TIME - DAY)
    assert run(ExclusionRule("android"), backup_info(), record) == []


def test_repair_falls_back_to_date_sent():
    record = item(direction="incoming", read=True, expires_in_ms=2 * DAY, date_sent=BACKUP_TIME - DAY - HOUR)
    assert rule_ids(run(ExclusionRule(), backup_info(), record)) == ["exclusion.expires-within-24h"]


def test_unread_incoming_unstarted_kept():
    record = item(direction="incoming", read=False, expires_in_ms=2 * DAY, date_received=BACKUP_TIME - 5 * DAY)
    assert run(ExclusionRule(), backup_info(), record) == []


def test_sent_outgoing_repaired_android():
    record = item(
        direction="outgoing", send_statuses=("delivered", "read"), expires_in_ms=2 * DAY,
        date_received=BACKUP_TIME - 2 * DAY + HOUR,
    )
    assert rule_ids(run(ExclusionRule(), backup_info(), record)) == ["exclusion.expires-within-24h"]


def test_pending_outgoing_unstarted_kept():
    record = item(
        direction="outgoing", send_statuses=("pending",), expires_in_ms=2 * DAY,
        date_received=BACKUP_TIME - 5 * DAY,
    )
    assert run(ExclusionRule(), backup_info(), record) == []


@pytest.mark.parametrize("update_kind", ["expiration_timer_change", "expirationTimerChange"])
def test_timer_change_update_exempt(update_kind):
    record = item(
        kind="update", direction="directionless", update_kind=update_kind, expires_in_ms=HOUR
    )
    assert run(ExclusionRule(), backup_info(), record) == []


def test_other_update_with_short_timer_reported():
    record = item(kind="update", direction="directionless", update_kind="simple_update", expires_in_ms=HOUR)
    assert rule_ids(run(ExclusionRule(), backup_info(), record)) == ["exclusion.short-timer"]


def test_unknown_policy_rejected():
    with pytest.raises(ValueError, match="boundary policy"):
        ExclusionRule("desktop")


def test_finding_location_names_frame():
    findings = run(ExclusionRule(), backup_info(), item(5, chat_id=9, expires_in_ms=HOUR))
    assert findings[0].location.startswith("chat 9, item 5 (frame 15")
