"""`backup-harness inspect`: exit codes, JSON output, one-line errors, key sources."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import backup_builders as b
from harness.archive import write_archive
from harness.cli import main
from harness.frames import encode_message
from harness.keys import MessageBackupKey, parse_aci
from shared_corpus import LIBSIGNAL_FILES

RECOVERY_KEY = "m" * 64
ACI = "11111111-1111-1111-1111-111111111111"
TOKEN = "ab" * 32
LIBSIGNAL_ARCHIVE = LIBSIGNAL_FILES / "new-account.binproto.encrypted"


def stream_bytes(messages) -> bytes:
    return b"".join(encode_message(m.SerializeToString()) for m in messages)


@pytest.fixture
def valid_stream(tmp_path) -> Path:
    return b.write_stream(tmp_path / "valid.binproto", b.minimal_backup() + [b.incoming_text()])


@pytest.fixture
def invalid_stream(tmp_path) -> Path:
    broken = b.incoming_text()
    broken.chat_item.expires_in_ms = 1000
    return b.write_stream(tmp_path / "invalid.binproto", b.minimal_backup() + [broken])


@pytest.fixture
def legacy_archive(tmp_path) -> Path:
    path = tmp_path / "backup.bin"
    key = MessageBackupKey.from_recovery_key(RECOVERY_KEY, parse_aci(ACI))
    data = stream_bytes(b.minimal_backup() + [b.incoming_text(), b.outgoing_text()])
    write_archive([data], path, key, layout="legacy")
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["inspect", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_valid_stream_exits_zero(capsys, valid_stream):
    code, out, err = run(capsys, valid_stream)
    assert code == 0
    assert "valid: no findings" in out
    assert "chat items 1" in out
    assert err == ""


def test_findings_exit_one_and_are_listed(capsys, invalid_stream):
    code, out, _ = run(capsys, invalid_stream)
    assert code == 1
    assert "findings 1:" in out
    assert "[validity.expiry] chat 3, item 1 (frame 5): expiration too soon" in out


def test_json_fields(capsys, invalid_stream):
    code, out, _ = run(capsys, invalid_stream, "--json")
    result = json.loads(out)
    assert code == 1
    for field in ("frames", "chats", "chat_items", "view_once", "disappearing", "attachments", "findings"):
        assert field in result
    assert result["frames"] == 5
    assert result["chat_items"] == 1
    assert result["disappearing"] == 1
    assert result["attachments"] == {"total": 0, "media": 0, "transit": 0, "none": 0}
    assert result["findings"][0]["rule"] == "validity.expiry"
    assert result["findings"][0]["location"] == "chat 3, item 1 (frame 5)"


def test_purpose_changes_the_rules(capsys, invalid_stream):
    code, _, _ = run(capsys, invalid_stream, "--purpose", "transfer")
    assert code == 0


def test_archive_with_recovery_key(capsys, legacy_archive):
    code, out, _ = run(capsys, legacy_archive, "--recovery-key", RECOVERY_KEY, "--aci", ACI, "--json")
    assert code == 0
    assert json.loads(out)["chat_items"] == 2


def test_modern_libsignal_archive_with_token(capsys):
    code, out, _ = run(
        capsys, LIBSIGNAL_ARCHIVE, "--recovery-key", RECOVERY_KEY, "--aci", ACI,
        "--forward-secrecy-token", TOKEN, "--json",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out)["chats"] == 1


def test_recovery_key_from_environment(capsys, monkeypatch, legacy_archive):
    monkeypatch.setenv("BACKUP_HARNESS_RECOVERY_KEY", RECOVERY_KEY.upper())
    code, _, _ = run(capsys, legacy_archive, "--aci", ACI)
    assert code == 0


def test_recovery_key_from_file(capsys, tmp_path, legacy_archive):
    key_file = tmp_path / "key.txt"
    key_file.write_text(RECOVERY_KEY + "\n")
    code, _, _ = run(capsys, legacy_archive, "--recovery-key-file", key_file, "--aci", ACI)
    assert code == 0


def one_line_error(capsys, *argv) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_wrong_key_is_one_line(capsys, legacy_archive):
    line = one_line_error(capsys, legacy_archive, "--recovery-key", "n" * 64, "--aci", ACI)
    assert "MAC" in line or "recovery key" in line
    assert "n" * 64 not in line


def test_missing_file_is_one_line(capsys, tmp_path):
    line = one_line_error(capsys, tmp_path / "absent.bin")
    assert "absent.bin" in line and "not found" in line


def test_encrypted_archive_without_key_is_one_line(capsys):
    line = one_line_error(capsys, LIBSIGNAL_ARCHIVE)
    assert "--recovery-key" in line


def test_key_without_aci_is_one_line(capsys, legacy_archive):
    line = one_line_error(capsys, legacy_archive, "--recovery-key", RECOVERY_KEY)
    assert "--aci" in line


def test_invalid_recovery_key_is_one_line(capsys, legacy_archive):
    line = one_line_error(capsys, legacy_archive, "--recovery-key", "short", "--aci", ACI)
    assert "recovery key" in line


def test_truncated_archive_is_one_line(capsys, tmp_path, legacy_archive):
    cut = tmp_path / "cut.bin"
    cut.write_bytes(legacy_archive.read_bytes()[:-40])
    one_line_error(capsys, cut, "--recovery-key", RECOVERY_KEY, "--aci", ACI)


def test_truncated_plain_stream_is_one_line(capsys, tmp_path, valid_stream):
    cut = tmp_path / "cut.binproto"
    cut.write_bytes(valid_stream.read_bytes()[:-3])
    line = one_line_error(capsys, cut)
    assert "truncated" in line and "frame 5" in line


def test_random_bytes_are_one_line(capsys, tmp_path):
    noise = tmp_path / "noise.bin"
    noise.write_bytes(bytes(range(7, 256)) * 8)
    line = one_line_error(capsys, noise)
    assert "BackupInfo" in line


def test_expansion_limit_is_one_line(capsys, legacy_archive):
    line = one_line_error(
        capsys, legacy_archive, "--recovery-key", RECOVERY_KEY, "--aci", ACI, "--max-inflated-bytes", "10"
    )
    assert "10" in line


def test_non_positive_expansion_limit_rejected(capsys, valid_stream):
    line = one_line_error(capsys, valid_stream, "--max-inflated-bytes", "0")
    assert "--max-inflated-bytes" in line


def test_help_states_default_expansion_limit(capsys):
    with pytest.raises(SystemExit):
        main(["inspect", "--help"])
    out = capsys.readouterr().out
    assert "max(1 GiB, 250 x the archive size) bytes" in " ".join(out.split())


def test_entry_point_runs_as_a_program(valid_stream):
    result = subprocess.run(
        [str(Path(sys.executable).with_name("backup-harness")), "inspect", str(valid_stream), "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["chat_items"] == 1
