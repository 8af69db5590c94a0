"""`backup-harness check`: clean corpus, one crafted archive per rule, unreadable input."""

import io
import json
from pathlib import Path

import pytest

import backup_builders as b
from harness import schema
from harness.archive import write_archive
from harness.cli import main
from harness.frames import encode_message
from harness.keys import MessageBackupKey, display_recovery_key, generate_recovery_key
from shared_corpus import LIBSIGNAL_FILES, SIGNAL_TEST_CASES

CORPUS = SIGNAL_TEST_CASES
LIBSIGNAL = LIBSIGNAL_FILES
ACI = "659aa5f4-a28d-fcc1-1ea1-b997537a3d95"
T = b.BACKUP_TIME_MS
DAY = b.DAY_MS
HOUR = 3_600_000


@pytest.fixture(scope="module")
def recovery_key():
    return generate_recovery_key()


def encrypt(path: Path, messages, recovery_key: str, layout: str = "legacy") -> Path:
    key = MessageBackupKey.from_recovery_key(recovery_key, bytes.fromhex(ACI.replace("-", "")))
    chunks = [encode_message(m.SerializeToString()) for m in messages]
    write_archive(chunks, path, key, layout=layout)
    return path


def check(capsys, *arguments):
    code = main(["check", *map(str, arguments)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_json(capsys, *arguments):
    code, out, err = check(capsys, *arguments, "--json")
    return code, json.loads(out) if out else None, err


def crafted(tmp_path, recovery_key, *frames, name="crafted.bin"):
    return encrypt(tmp_path / name, [*b.minimal_backup(), *frames], recovery_key)


def key_arguments(recovery_key):
    return ["--recovery-key", recovery_key, "--aci", ACI]


# Clean input ----------------------------------------------------------------------------


def test_corpus_has_no_findings(capsys):
    files = sorted(CORPUS.glob("*.binproto"))
    assert len(files) == 604
    failures = []
    for path in files:
        code, out, _ = check(capsys, path)
        if code != 0:
            failures.append(f"{path.name}: {out.strip().splitlines()[:3]}")
    assert failures == []


def test_libsignal_archive_clean(capsys):
    code, out, _ = check(
        capsys,
        LIBSIGNAL / "new-account.binproto.encrypted",
        "--recovery-key", "m" * 64,
        "--aci", "11111111-1111-1111-1111-111111111111",
        "--forward-secrecy-token", "ab" * 32,
    )
    assert code == 0
    assert "clean" in out


def test_clean_crafted_archive(tmp_path, capsys, recovery_key):
    path = crafted(tmp_path, recovery_key, b.incoming_text(), b.outgoing_text())
    code, result, _ = check_json(capsys, path, *key_arguments(recovery_key))
    assert code == 0
    assert result["findings"] == []
    assert result["counts"]["chat_items"] == 2


def test_display_form_key_accepted(tmp_path, capsys, recovery_key):
    path = crafted(tmp_path, recovery_key, b.incoming_text())
    code, _, _ = check(capsys, path, "--recovery-key", display_recovery_key(recovery_key), "--aci", ACI)
    assert code == 0


def test_key_from_stdin(tmp_path, capsys, monkeypatch, recovery_key):
    path = crafted(tmp_path, recovery_key, b.incoming_text())
    monkeypatch.setattr("sys.stdin", io.StringIO(recovery_key + "\n"))
    code, _, _ = check(capsys, path, "--recovery-key", "-", "--aci", ACI)
    assert code == 0


# One crafted archive per rule -------------------------------------------------------------


def disappearing(frame, duration, start=None):
    frame.chat_item.expires_in_ms = duration
    if start is not None:
        frame.chat_item.expire_start_date = start
    return frame


def view_once(with_attachment):
    frame = b.incoming_text(date_sent=T - DAY)
    frame.chat_item.ClearField("standard_message")
    frame.chat_item.view_once_message.SetInParent()
    if with_attachment:
        b.file_pointer(frame.chat_item.view_once_message.attachment.pointer)
    return frame


def quote_of_view_once(quote_type, attachments):
    frame = b.outgoing_text(date_sent=T - DAY + 60_000)
    quote = frame.chat_item.standard_message.quote
    quote.target_sent_timestamp = T - DAY
    quote.author_id = b.CONTACT_ID
    quote.type = quote_type
    for _ in range(attachments):
        quote.attachments.add(content_type="image/jpeg")
    return frame


def with_attachment(transit=True, media=False, media_tier_cdn=True):
    frame = b.incoming_text()
    pointer = frame.chat_item.standard_message.attachments.add().pointer
    b.file_pointer(pointer, transit=transit, media=media)
    if not media_tier_cdn:
        pointer.locator_info.ClearField("media_tier_cdn_number")
    return frame


QUOTE = schema.Frame().chat_item.standard_message.quote
CASES = {
    "exclusion.short-timer": ([disappearing(b.incoming_text(), HOUR)], []),
    "exclusion.expires-within-24h": (
        [disappearing(b.incoming_text(read=True), 2 * DAY, start=T - DAY - HOUR)], []
    ),
    "validity.expiry": ([disappearing(b.incoming_text(read=True), 2 * DAY)], []),
    "view-once.attachment": ([view_once(True)], []),
    "view-once.quote-attachment": ([view_once(False), quote_of_view_once(QUOTE.VIEW_ONCE, 1)], []),
    "view-once.quote-type": ([view_once(False), quote_of_view_once(QUOTE.NORMAL, 0)], []),
    "media.free-media-tier": ([with_attachment(transit=True, media=True)], ["--tier", "free"]),
    "media.free-no-transit": (
        [with_attachment(transit=False, media=True, media_tier_cdn=False)], ["--tier", "free"]
    ),
    "media.paid-not-eligible": ([with_attachment(transit=True, media=False)], ["--tier", "paid"]),
    "validity.chat-item": ([b.incoming_text(chat_id=99)], []),
}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_crafted_archive_reports_planted_finding(tmp_path, capsys, recovery_key, rule):
    frames, options = CASES[rule]
    path = crafted(tmp_path, recovery_key, *frames)
    code, result, _ = check_json(capsys, path, *key_arguments(recovery_key), *options)
    assert code == 1
    errors = [f for f in result["findings"] if f["severity"] == "error"]
    assert [f["rule"] for f in errors] == [rule]
    assert errors[0]["message"].startswith("chat ")


def test_unstarted_read_timer_repaired(tmp_path, capsys, recovery_key):
    # Received 2 days before the backup, read, 2 d + 1 h timer never started: Android counts it
    # from the time received and drops it; libsignal rejects the unstarted timer anyway.
    frame = disappearing(b.incoming_text(read=True, date_sent=T - 2 * DAY), 2 * DAY + HOUR)
    path = crafted(tmp_path, recovery_key, frame)
    code, result, _ = check_json(capsys, path, *key_arguments(recovery_key))
    assert code == 1
    assert sorted(f["rule"] for f in result["findings"]) == ["exclusion.expires-within-24h", "validity.expiry"]
    _, ios, _ = check_json(capsys, path, *key_arguments(recovery_key), "--policy", "ios")
    assert [f["rule"] for f in ios["findings"]] == ["validity.expiry"]


def test_boundary_policy_changes_verdict(tmp_path, capsys, recovery_key):
    frame = disappearing(b.incoming_text(read=True), 2 * DAY, start=T - DAY)
    path = crafted(tmp_path, recovery_key, frame)
    android, _, _ = check(capsys, path, *key_arguments(recovery_key), "--policy", "android")
    ios, out, _ = check(capsys, path, *key_arguments(recovery_key), "--policy", "ios")
    assert android == 0
    assert ios == 1
    assert "exclusion.expires-within-24h" in out


def test_backup_time_override(tmp_path, capsys, recovery_key):
    frame = disappearing(b.incoming_text(read=True), 3 * DAY, start=T - DAY)
    path = crafted(tmp_path, recovery_key, frame)
    assert check(capsys, path, *key_arguments(recovery_key))[0] == 0
    later = T + 2 * DAY
    assert check(capsys, path, *key_arguments(recovery_key), "--backup-time", later)[0] == 1


def test_old_free_media_is_warning(tmp_path, capsys, recovery_key):
    frame = with_attachment()
    locator = frame.chat_item.standard_message.attachments[0].pointer.locator_info
    locator.transit_tier_upload_timestamp = T - 50 * DAY
    path = crafted(tmp_path, recovery_key, frame)
    code, out, _ = check(capsys, path, *key_arguments(recovery_key), "--tier", "free")
    assert code == 0
    assert "warning: media.beyond-free-window: chat 3, item 1: " in out
    code, _, _ = check(capsys, path, *key_arguments(recovery_key), "--tier", "free", "--free-window-days", 60)
    assert code == 0


def test_text_output_locates_finding(tmp_path, capsys, recovery_key):
    path = crafted(tmp_path, recovery_key, b.incoming_text(), view_once(True))
    code, out, _ = check(capsys, path, *key_arguments(recovery_key))
    assert code == 1
    assert "error: view-once.attachment: chat 3, item 2: view-once attachment present" in out
    assert out.strip().splitlines()[-1].endswith("1 finding(s) (2 chat items in 1 chats)")


def test_plain_stream_checked(tmp_path, capsys):
    path = b.write_stream(tmp_path / "plain.binproto", [*b.minimal_backup(), view_once(True)])
    code, out, _ = check(capsys, path)
    assert code == 1
    assert "view-once.attachment" in out


# Unreadable input and usage errors ------------------------------------------------------------


def test_wrong_key_unreadable(tmp_path, capsys, recovery_key):
    path = crafted(tmp_path, recovery_key, b.incoming_text())
    code, out, err = check(capsys, path, "--recovery-key", generate_recovery_key(), "--aci", ACI)
    assert code == 2
    assert "MAC mismatch" in err
    assert out == ""


def test_truncated_archive_unreadable(tmp_path, capsys, recovery_key):
    path = crafted(tmp_path, recovery_key, b.incoming_text())
    path.write_bytes(path.read_bytes()[:-40])
    code, _, err = check(capsys, path, *key_arguments(recovery_key))
    assert code == 2
    assert err.startswith("backup-harness: error: ")


def test_not_a_backup_unreadable(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("shopping list\n" * 20)
    code, _, err = check(capsys, path)
    assert code == 2
    assert "notes.txt" in err


def test_missing_file_reported(tmp_path, capsys):
    code, _, err = check(capsys, tmp_path / "absent.bin")
    assert code == 2
    assert "not found" in err


def test_malformed_key_reported(tmp_path, capsys, recovery_key):
    path = crafted(tmp_path, recovery_key, b.incoming_text())
    code, _, err = check(capsys, path, "--recovery-key", "abc", "--aci", ACI)
    assert code == 2
    assert "invalid recovery key: expected 64 characters, got 3" in err


def test_key_without_aci_reported(tmp_path, capsys, recovery_key):
    path = crafted(tmp_path, recovery_key, b.incoming_text())
    code, _, err = check(capsys, path, "--recovery-key", recovery_key)
    assert code == 2
    assert "--aci" in err
    assert recovery_key not in err


def test_bad_token_reported(tmp_path, capsys, recovery_key):
    path = crafted(tmp_path, recovery_key, b.incoming_text())
    code, _, err = check(capsys, path, *key_arguments(recovery_key), "--forward-secrecy-token", "xyz")
    assert code == 2
    assert "--forward-secrecy-token" in err


@pytest.mark.parametrize(
    "options, expected",
    [
        (["--backup-time", "-5"], "--backup-time"),
        (["--free-window-days", "0", "--tier", "free"], "--free-window-days"),
        (["--free-window-days", "30"], "--tier free"),
    ],
)
def test_bad_rule_options_reported(tmp_path, capsys, options, expected):
    path = b.write_stream(tmp_path / "plain.binproto", b.minimal_backup())
    code, _, err = check(capsys, path, *options)
    assert code == 2
    assert expected in err
