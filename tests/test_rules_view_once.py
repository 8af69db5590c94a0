"""View-once tombstones and quotes of view-once messages."""

from harness.rules import ViewOnceRule
from rule_records import backup_info, item, run, transit_attachment


def view_once(number=1, **fields):
    values = dict(kind="view_once", text=None, date_sent=1000 + number)
    values.update(fields)
    return item(number, **values)


def test_tombstone_passes():
    assert run(ViewOnceRule(), backup_info(), view_once()) == []


def test_attachment_flag_reported():
    findings = run(ViewOnceRule(), backup_info(), view_once(57, view_once_has_attachment=True))
    assert [f.rule for f in findings] == ["view-once.attachment"]
    assert findings[0].message == "chat 3, item 57: view-once attachment present (expected a tombstone)"


def test_attachment_record_reported():
    record = view_once(attachments=(transit_attachment(role="view_once"),))
    findings = run(ViewOnceRule(), backup_info(), record)
    assert [f.rule for f in findings] == ["view-once.attachment"]
    assert "'photo.jpg'" in findings[0].message


def test_quote_view_once_without_attachments_passes():
    quote = item(2, quote_type="view_once", quote_target_sent=1001)
    assert run(ViewOnceRule(), backup_info(), view_once(), quote) == []


def test_quote_view_once_with_attachments_reported():
    quote = item(2, quote_type="view_once", quote_target_sent=1001, quoted_attachment_count=1)
    findings = run(ViewOnceRule(), backup_info(), view_once(), quote)
    assert [f.rule for f in findings] == ["view-once.quote-attachment"]


def test_quote_view_once_thumbnail_reported():
    thumbnail = transit_attachment(role="quote_thumbnail", file_name="thumb.jpg")
    quote = item(2, quote_type="view_once", quote_target_sent=1001, attachments=(thumbnail,))
    findings = run(ViewOnceRule(), backup_info(), view_once(), quote)
    assert [f.rule for f in findings] == ["view-once.quote-thumbnail"]


def test_normal_quote_of_view_once_reported():
    quote = item(2, quote_type="normal", quote_target_sent=1001, quoted_attachment_count=1)
    findings = run(ViewOnceRule(), backup_info(), view_once(), quote)
    assert [f.rule for f in findings] == ["view-once.quote-type", "view-once.quote-attachment"]


def test_normal_quote_of_other_chat_passes():
    quote = item(2, chat_id=4, quote_type="normal", quote_target_sent=1001, quoted_attachment_count=1)
    assert run(ViewOnceRule(), backup_info(), view_once(), quote) == []


def test_normal_quote_of_standard_passes():
    target = item(1, date_sent=1001)
    quote = item(2, quote_type="normal", quote_target_sent=1001, quoted_attachment_count=1)
    assert run(ViewOnceRule(), backup_info(), target, quote) == []
