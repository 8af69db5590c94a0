"""The Signal backup test corpus through our reader, our schema, helper archives and libsignal.

For each of the 604 Signal-Message-Backup-Tests frame streams and libsignal's canonical backup:

1. read: our reader and validity rules decode it with no finding and no unknown field;
2. re-encode: every message parsed with our schema serialises back to the same bytes;
3. encrypt: our archive writer makes a modern-layout archive of the re-encoded stream;
4. libsignal validates that archive (MessageBackup.validate, purpose RemoteBackup);
5. decrypt: our archive reader gives back the identical frame stream;
6. compare: libsignal's ComparableBackup text of the original and the round-tripped stream
   are equal, with no unknown fields.

All files share one libsignal bridge process; the steps run once for the whole corpus and each
test asserts one step, so a failure names the step and the files.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import glob
from pathlib import Path

import pytest

from harness import oracle, schema
from harness.archive import read_archive, write_archive
from harness.frames import encode_message, iter_messages, read_file_chunks
from harness.keys import MessageBackupKey, parse_aci
from harness.reader import scan
from harness.schema.encoding import serialize
from harness.summary import BackupSummary
from harness.validity import ValidityChecker
from libsignal_bridge import Bridge, LibsignalError
from shared_corpus import LIBSIGNAL_FILES, SIGNAL_TEST_CASES

pytestmark = pytest.mark.oracle

CORPUS_DIR = SIGNAL_TEST_CASES
CANONICAL = LIBSIGNAL_FILES / "canonical-backup.binproto"
FILES = sorted(Path(p) for p in glob.glob(str(CORPUS_DIR / "*.binproto"))) + [CANONICAL]
RECOVERY_KEY = "m" * 64
ACI = "11111111-1111-1111-1111-111111111111"
TOKEN = b"\xab" * 32
STEPS = ("read", "re-encode", "encrypt", "libsignal validate", "decrypt", "compare")
BRIDGE_THREADS = 4


@dataclasses.dataclass
class FileResult:
    path: Path
    failures: dict[str, str] = dataclasses.field(default_factory=dict)

    def fail(self, step: str, reason: str) -> None:
        self.failures.setdefault(step, reason)


def read_step(messages: list[bytes], result: FileResult) -> None:
    summary = BackupSummary()
    checker = ValidityChecker()
    scan(messages, [summary, checker])
    if checker.findings:
        result.fail("read", checker.findings[0].message)
    if summary.unknown_fields:
        result.fail("read", f"{summary.unknown_fields} unknown fields")


def reencode_step(messages: list[bytes], result: FileResult) -> bytes:
    out = [serialize(schema.BackupInfo.FromString(messages[0]))]
    out += [serialize(schema.Frame.FromString(message)) for message in messages[1:]]
    for index, (before, after) in enumerate(zip(messages, out)):
        if before != after:
            result.fail("re-encode", f"frame {index} differs after re-encoding")
            break
    return b"".join(encode_message(message) for message in out)


def run_file(path: Path, workdir: Path, key: MessageBackupKey, bridge: Bridge) -> FileResult:
    result = FileResult(path)
    original = path.read_bytes()
    messages = list(iter_messages([original]))
    read_step(messages, result)
    stream = reencode_step(messages, result)

    archive = workdir / f"{path.stem}.bin"
    try:
        write_archive([stream], archive, key, layout="modern")
    except Exception as error:  # reported per file; the other files still run
        result.fail("encrypt", repr(error))
        return result

    verdict = oracle.validate_archive(
        archive, recovery_key=RECOVERY_KEY, aci=ACI, forward_secrecy_token=TOKEN, bridge=bridge
    )
    if not verdict.ok or verdict.unknown_fields:
        result.fail("libsignal validate", verdict.error or str(verdict.unknown_fields[:3]))

    decrypted = read_archive(archive, key)
    if decrypted != original:
        result.fail("decrypt", f"{len(decrypted)} bytes back, {len(original)} expected")
    round_trip = workdir / f"{path.stem}.round-trip.binproto"
    round_trip.write_bytes(decrypted)
    try:
        before = oracle.comparable_backup(path, bridge=bridge)
        after = oracle.comparable_backup(round_trip, bridge=bridge)
    except LibsignalError as error:
        result.fail("compare", str(error))
        return result
    if before.unknown_fields or after.unknown_fields:
        result.fail("compare", f"unknown fields {(before.unknown_fields + after.unknown_fields)[:3]}")
    elif before.text != after.text:
        result.fail("compare", "ComparableBackup texts differ")
    return result


@pytest.fixture(scope="module")
def corpus_results(tmp_path_factory) -> list[FileResult]:
    workdir = tmp_path_factory.mktemp("corpus-oracle")
    key = MessageBackupKey.from_recovery_key(RECOVERY_KEY, parse_aci(ACI), TOKEN)
    with Bridge() as bridge, concurrent.futures.ThreadPoolExecutor(BRIDGE_THREADS) as pool:
        results = list(pool.map(lambda path: run_file(path, workdir, key, bridge), FILES))
    counts = {step: sum(step not in r.failures for r in results) for step in STEPS}
    print("\ncorpus oracle: " + ", ".join(f"{step} {count}/{len(results)}" for step, count in counts.items()))
    return results


def test_corpus_has_every_file():
    assert len(FILES) == 605
    assert CANONICAL.exists()


@pytest.mark.parametrize("step", STEPS)
def test_every_file_passes_step(corpus_results, step):
    failed = [f"{r.path.name}: {r.failures[step]}" for r in corpus_results if step in r.failures]
    assert failed == [], f"{len(failed)} of {len(corpus_results)} files fail {step}: {failed[:5]}"


def test_round_trip_detects_a_changed_frame(tmp_path):
    """The compare step can fail: a changed message body gives a different canonical text."""
    path = CORPUS_DIR / "chat_item_standard_message_text_only_00.binproto"
    messages = list(iter_messages(read_file_chunks(path)))
    for index, message in enumerate(messages[1:], start=1):
        frame = schema.Frame.FromString(message)
        if frame.WhichOneof("item") == "chat_item":
            frame.chat_item.standard_message.text.body += " (edited)"
            messages[index] = frame.SerializeToString()
            break
    edited = tmp_path / "edited.binproto"
    edited.write_bytes(b"".join(encode_message(m) for m in messages))
    with Bridge() as bridge:
        assert oracle.comparable_backup(path, bridge=bridge).text != oracle.comparable_backup(edited, bridge=bridge).text


def test_libsignal_rejects_a_wrong_key(tmp_path):
    archive = tmp_path / "backup.bin"
    key = MessageBackupKey.from_recovery_key(RECOVERY_KEY, parse_aci(ACI), TOKEN)
    write_archive([CANONICAL.read_bytes()], archive, key, layout="modern")
    with Bridge() as bridge:
        verdict = oracle.validate_archive(archive, recovery_key="n" * 64, aci=ACI, forward_secrecy_token=TOKEN, bridge=bridge)
        frames = oracle.validate_frames(CANONICAL, bridge=bridge)
    assert not verdict.ok
    assert "HMAC doesn't match" in verdict.error
    assert frames.ok
