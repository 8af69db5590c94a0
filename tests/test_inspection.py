"""The batched fast path of inspect gives exactly what the frame-by-frame reader gives."""

from __future__ import annotations

import glob
import random

import pytest

import backup_builders as b
from harness import schema
from harness.errors import MalformedFrameError, TruncatedArchiveError
from harness.frames import encode_message, open_frames
from harness.inspection import BatchInspector, Prefetcher, inspect_file
from harness.reader import scan
from harness.summary import BackupSummary
from harness.validity import ValidityChecker
from shared_corpus import SIGNAL_TEST_CASES

CORPUS = sorted(glob.glob(str(SIGNAL_TEST_CASES / "*.binproto")))


def reference_result(path) -> dict:
    summary = BackupSummary()
    checker = ValidityChecker()
    with open_frames(path) as messages:
        scan(messages, [summary, checker])
    summary.findings = checker.findings
    return summary.to_json()


def both_results(path) -> tuple[dict, dict]:
    return inspect_file(path).to_json(), reference_result(path)


def plain_items(count: int, seed: int = 3, **fields) -> list:
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "épsilon", "zeta"]
    return [
        b.incoming_text(" ".join(rng.choices(words, k=rng.randint(1, 40))), date_sent=b.BACKUP_TIME_MS - i, **fields)
        for i in range(count)
    ]


def test_corpus_results_match_reader():
    mismatched = [path for path in CORPUS if (pair := both_results(path))[0] != pair[1]]
    assert len(CORPUS) == 604
    assert mismatched == []


def test_plain_items_take_the_fast_path(tmp_path):
    path = b.write_stream(tmp_path / "plain.binproto", b.minimal_backup() + plain_items(3000))
    summary = BackupSummary()
    checker = ValidityChecker()
    inspector = BatchInspector(summary, checker)
    inspector.run([path.read_bytes()])
    assert inspector._fast_items == 3000
    assert summary.chat_items == 3000
    assert checker.findings == []


def mixed_stream() -> list:
    """Plain items with odd ones planted among them: each needs the frame-by-frame path."""
    frames = b.minimal_backup() + plain_items(300)
    expiring = b.incoming_text("timer")
    expiring.chat_item.expires_in_ms = 1000  # too short for a remote backup
    outgoing = b.outgoing_text(statuses=("sent", None))
    unknown = b.incoming_text("unknown").SerializeToString() + b"\x98\x06\x01"
    in_unknown_chat = b.incoming_text("lost", chat_id=99)
    from_self = b.incoming_text("self", author_id=b.SELF_ID)
    attachment = b.incoming_text("photo")
    b.file_pointer(attachment.chat_item.standard_message.attachments.add().pointer)
    ranges = b.incoming_text("bold")
    ranges.chat_item.standard_message.text.body_ranges.add(start=0, length=4, style=1)
    no_text = b.incoming_text("")
    no_text.chat_item.standard_message.ClearField("text")
    far_future = b.incoming_text("future", date_sent=9_000_000_000_000_000)
    late_chat = b.chat_frame(chat_id=7, recipient_id=b.SELF_ID)
    long_text = b.incoming_text("x" * 300)  # two-byte frame length
    odd = [expiring, outgoing, unknown, in_unknown_chat, from_self, attachment, ranges, no_text,
           far_future, late_chat, b.incoming_text("after chat", chat_id=7, author_id=b.CONTACT_ID),
           long_text]  # fmt: skip
    for position, frame in zip(range(20, 320, 25), odd):
        frames.insert(position, frame)
    return frames


def test_mixed_stream_matches_reader(tmp_path):
    path = b.write_stream(tmp_path / "mixed.binproto", mixed_stream())
    fast, reference = both_results(path)
    assert fast == reference
    assert len(fast["findings"]) >= 7
    assert fast["unknown_fields"] == 1


@pytest.mark.parametrize("chunk_size", [1, 7, 100, 4096])
def test_chunk_boundaries_do_not_matter(tmp_path, chunk_size):
    path = b.write_stream(tmp_path / "mixed.binproto", mixed_stream())
    data = path.read_bytes()
    summary = BackupSummary()
    checker = ValidityChecker()
    BatchInspector(summary, checker).run(data[i : i + chunk_size] for i in range(0, len(data), chunk_size))
    summary.findings = checker.findings
    assert summary.to_json() == reference_result(path)


def test_repeated_field_inside_item_is_not_fast(tmp_path):
    # One item names its chat twice and the next none: the columns still hold one chat id
    # per item, so only the per-item decode sees the missing one.
    item = b.incoming_text("a").chat_item.SerializeToString()
    twice = b"\x22" + bytes([len(item) + 2]) + b"\x08\x03" + item
    missing = b.incoming_text("b")
    missing.chat_item.chat_id = 0
    frames = b.to_bytes(b.minimal_backup()) + [twice, missing.SerializeToString()]
    path = b.write_stream(tmp_path / "repeated.binproto", frames + b.to_bytes(plain_items(20)))
    fast, reference = both_results(path)
    assert fast == reference
    assert any("0 is not a valid chat ID" in f["message"] for f in fast["findings"])


def test_truncated_stream_reported(tmp_path):
    data = b"".join(encode_message(m) for m in b.to_bytes(b.minimal_backup() + plain_items(50)))
    path = tmp_path / "cut.binproto"
    path.write_bytes(data[:-10])
    with pytest.raises(TruncatedArchiveError, match=r"frame 54 at byte offset \d+"):
        inspect_file(path)


def test_invalid_frame_in_batch_named(tmp_path):
    frames = b.to_bytes(b.minimal_backup() + plain_items(30))
    frames[20] = b"\x22\x05\x08\x01\x10"  # chat item whose declared length runs past the frame
    path = b.write_stream(tmp_path / "bad.binproto", frames)
    with pytest.raises(MalformedFrameError, match="frame 20: invalid protobuf"):
        inspect_file(path)


def test_prefetcher_passes_errors_through():
    def chunks():
        yield b"abc"
        raise TruncatedArchiveError("cut")

    with Prefetcher(chunks()) as prefetched:
        assert next(prefetched) == b"abc"
        with pytest.raises(TruncatedArchiveError, match="cut"):
            next(prefetched)


def test_prefetcher_stops_early():
    produced = []

    def chunks():
        for number in range(1000):
            produced.append(number)
            yield bytes([number % 256])

    with Prefetcher(chunks(), depth=2) as prefetched:
        next(prefetched)
    assert len(produced) < 10


def test_empty_frame_and_backup_info_starting_like_chat_item(tmp_path):
    info = schema.BackupInfo(current_app_version="x")
    assert info.SerializeToString()[0] == 0x22
    frames = [info, b.account_frame(), b.self_frame(), schema.Frame()]
    path = b.write_stream(tmp_path / "odd.binproto", frames)
    fast, reference = both_results(path)
    assert fast == reference
