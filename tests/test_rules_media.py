"""Media pointers by tier: free has transit pointers only, paid is media-tier eligible."""

import pytest

from harness.rules import MediaTierRule
from rule_records import (
    BACKUP_TIME,
    DAY,
    backup_info,
    item,
    media_tier_attachment,
    run,
    transit_attachment,
)


def with_attachments(*attachments, number=1):
    return item(number, attachments=attachments)


def test_free_transit_passes():
    assert run(MediaTierRule("free"), backup_info(), with_attachments(transit_attachment())) == []


def test_free_media_tier_reported():
    findings = run(MediaTierRule("free"), backup_info(), with_attachments(media_tier_attachment()))
    assert [f.rule for f in findings] == ["media.free-media-tier"]
    assert findings[0].message.startswith("chat 3, item 1: attachment 'photo.jpg'")


def test_free_no_transit_reported():
    attachment = transit_attachment(transit_cdn_key=None, transit_cdn_number=None)
    findings = run(MediaTierRule("free"), backup_info(), with_attachments(attachment))
    assert [f.rule for f in findings] == ["media.free-no-transit"]


def test_empty_locator_ignored():
    attachment = transit_attachment(key=b"", transit_cdn_key=None, plaintext_hash=None)
    assert run(MediaTierRule("free"), backup_info(), with_attachments(attachment)) == []
    assert run(MediaTierRule("paid"), backup_info(), with_attachments(attachment)) == []


def test_view_once_attachment_left_to_view_once_rule():
    attachment = transit_attachment(role="view_once", transit_cdn_key=None)
    assert run(MediaTierRule("free"), backup_info(), with_attachments(attachment)) == []


def test_free_window_default_45_days():
    old = transit_attachment(file_name="old.jpg", transit_upload_ms=BACKUP_TIME - 46 * DAY)
    new = transit_attachment(file_name="new.jpg", transit_upload_ms=BACKUP_TIME - 44 * DAY)
    rule = MediaTierRule("free")
    findings = run(rule, backup_info(), with_attachments(old, new))
    assert [f.rule for f in findings] == ["media.beyond-free-window"]
    assert findings[0].severity == "warning"
    assert "46 days" in findings[0].message
    assert [a.file_name for _, a in rule.beyond_free_window] == ["old.jpg"]


def test_free_window_configurable():
    attachment = transit_attachment(transit_upload_ms=BACKUP_TIME - 31 * DAY)
    rule = MediaTierRule("free", free_window_days=30)
    assert len(run(rule, backup_info(), with_attachments(attachment))) == 1


def test_paid_eligible_passes():
    findings = run(MediaTierRule("paid"), backup_info(), with_attachments(media_tier_attachment()))
    assert findings == []


def test_paid_without_plaintext_hash_reported():
    attachment = transit_attachment(plaintext_hash=None, encrypted_digest=b"d" * 32)
    findings = run(MediaTierRule("paid"), backup_info(), with_attachments(attachment))
    assert [f.rule for f in findings] == ["media.paid-not-eligible"]


def test_unknown_tier_rejected():
    with pytest.raises(ValueError, match="backup tier"):
        MediaTierRule("gold")
