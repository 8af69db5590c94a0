"""Every frame stream of Signal's backup test corpus survives a restore into the reference app
and an export back out.

Each of the 604 ``.binproto`` files goes through four steps:

1. the app's importer writes it into a fresh message store (the restore code path);
2. the app's exporter writes a remote backup from that store (the backup code path, with the
   exclusion rules on);
3. libsignal validates the export;
4. libsignal's ComparableBackup of the export must equal that of the original, after the
   harness's own exclusion rules are applied to the original.

The importer and exporter run in this process against a store file, which is the same code the
app process runs. One libsignal bridge serves every file.
"""

from __future__ import annotations

import base64
import difflib
from pathlib import Path

import pytest

from harness import schema
from harness.frames import encode_message, iter_messages, read_file_chunks
from harness.model import ChatItemRecord
from harness.reader import scan
from harness.rules import ExclusionRule, ViewOnceRule
from libsignal_bridge import Bridge
from reference_app.defects import Defects
from reference_app.export import Exporter, ExportOptions
from reference_app.importer import Importer
from reference_app.store import MessageStore
from shared_corpus import SIGNAL_TEST_CASES

pytestmark = pytest.mark.oracle

CORPUS = SIGNAL_TEST_CASES
FILES = sorted(CORPUS.glob("*.binproto")) if CORPUS.is_dir() else []
EXPECTED_FILES = 604


class _Marking:
    """Mixin: remember the frame index of every chat item a rule reports."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.marked: set[int] = set()

    def report_item(self, record: ChatItemRecord, rule: str, text: str, severity: str = "error") -> None:
        if severity == "error":
            self.marked.add(record.frame_index)
        super().report_item(record, rule, text, severity)


class MarkingExclusionRule(_Marking, ExclusionRule):
    pass


class MarkingViewOnceRule(_Marking, ViewOnceRule):
    pass


def expected_original(messages: list[bytes], policy: str = "android") -> bytes:
    """Apply the harness's exclusion and view-once rules to an original frame stream."""
    exclusion, view_once = MarkingExclusionRule(policy), MarkingViewOnceRule()
    scan(messages, [exclusion, view_once])
    kept = [messages[0]]
    for index, data in enumerate(messages[1:], start=1):
        if index in exclusion.marked:
            continue
        if index in view_once.marked:
            frame = schema.Frame.FromString(data)
            frame.chat_item.view_once_message.ClearField("attachment")
            data = frame.SerializeToString()
        kept.append(data)
    return b"".join(encode_message(message) for message in kept)


def round_trip(path: Path, work_dir: Path) -> bytes:
    """Import a frame stream into a new message store and export it as a remote backup."""
    store = MessageStore(work_dir / "messages.db")
    try:
        with store.transaction() as db:
            imported = Importer(db).import_messages(iter_messages(read_file_chunks(path)))
        with store.transaction() as db:
            options = ExportOptions(
                backup_time_ms=imported.backup_time_ms,
                media_root_key=imported.media_root_key,
                defects=Defects(),
            )
            return b"".join(Exporter(db, options).chunks())
    finally:
        store.close()


@pytest.fixture(scope="module")
def bridge():
    with Bridge() as process:
        yield process


def comparable(bridge: Bridge, data: bytes) -> dict:
    return bridge.call("backup_comparable", data=base64.b64encode(data).decode("ascii"), purpose="remote")


def test_corpus_is_complete():
    assert len(FILES) == EXPECTED_FILES


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_corpus_file_round_trips(bridge, tmp_path, path):
    original = list(iter_messages(read_file_chunks(path)))
    exported = round_trip(path, tmp_path)

    validation = bridge.call("backup_validate_plain", data=base64.b64encode(exported).decode("ascii"), purpose="remote")
    assert validation["ok"], f"libsignal rejected the export of {path.name}: {validation['error']}"
    expected = comparable(bridge, expected_original(original))
    actual = comparable(bridge, exported)
    assert actual["unknown_fields"] == []
    assert expected["unknown_fields"] == []
    if actual["comparable"] != expected["comparable"]:
        diff = difflib.unified_diff(
            expected["comparable"].splitlines(), actual["comparable"].splitlines(), "original", "export", lineterm="", n=2
        )
        pytest.fail(f"{path.name}: export differs from the original:\n" + "\n".join(list(diff)[:60]))
