"""Recovery keys (generation, validation, normalisation, display) and the `keys` command."""

from __future__ import annotations

import collections
import json

import pytest

from harness.cli import main
from harness.errors import RecoveryKeyError, UsageError
from harness.keys import (
    ALPHABET,
    RECOVERY_KEY_LENGTH,
    MessageBackupKey,
    derive_backup_id,
    derive_backup_key,
    derive_media_id,
    display_recovery_key,
    generate_recovery_key,
    normalize_recovery_key,
    parse_aci,
    parse_forward_secrecy_token,
    validate_recovery_key,
)

KEY = "dtjs858asj6tv0jzsqrsmj0ubp335pisj98e9ssnss8myoc08drhtcktyawvx45l"
ACI = "659aa5f4-a28d-fcc1-1ea1-b997537a3d95"
TOKEN_HEX = "ab" * 32


# --- Generation --------------------------------------------------------------------------------


def test_generated_key_is_valid():
    for _ in range(50):
        key = generate_recovery_key()
        assert len(key) == RECOVERY_KEY_LENGTH
        validate_recovery_key(key)


def test_generated_keys_differ():
    keys = {generate_recovery_key() for _ in range(100)}
    assert len(keys) == 100


def test_generated_keys_use_whole_alphabet():
    counts = collections.Counter("".join(generate_recovery_key() for _ in range(300)))
    assert set(counts) == set(ALPHABET)
    # 19200 draws over 36 symbols: about 533 each; a biased generator falls far outside this.
    assert min(counts.values()) > 400
    assert max(counts.values()) < 680


# --- Validation ----------------------------------------------------------------------------------


def test_validate_accepts_canonical():
    validate_recovery_key(KEY)


@pytest.mark.parametrize("length", [0, 1, 63, 65, 128])
def test_validate_rejects_length(length):
    key = (KEY * 2)[:length]
    with pytest.raises(RecoveryKeyError, match=f"expected 64 characters, got {length}$"):
        validate_recovery_key(key)


@pytest.mark.parametrize(
    "position, char, description",
    [
        (1, "A", "an upper-case letter"),
        (10, "-", "'-'"),
        (33, " ", "a whitespace character"),
        (64, "\u00e9", "U+00E9"),
        (5, "!", "'!'"),
    ],
)
def test_validate_rejects_character(position, char, description):
    key = KEY[: position - 1] + char + KEY[position:]
    with pytest.raises(RecoveryKeyError) as caught:
        validate_recovery_key(key)
    message = str(caught.value)
    assert f"character {position} is {description}" in message


def test_validate_error_hides_key():
    bad = KEY[:20] + "#" + KEY[21:]
    with pytest.raises(RecoveryKeyError) as caught:
        validate_recovery_key(bad)
    assert KEY[:8] not in str(caught.value)
    assert KEY[-8:] not in str(caught.value)


def test_validate_rejects_upper_case_key():
    with pytest.raises(RecoveryKeyError, match="character 1 is an upper-case letter"):
        validate_recovery_key(KEY.upper())


def test_validate_rejects_non_string():
    with pytest.raises(RecoveryKeyError, match="expected a string"):
        validate_recovery_key(KEY.encode())  # type: ignore[arg-type]


def test_recovery_key_error_is_usage_error():
    assert issubclass(RecoveryKeyError, UsageError)
    assert issubclass(RecoveryKeyError, ValueError)


# --- Normalisation and display -------------------------------------------------------------------


def test_normalize_display_form():
    assert normalize_recovery_key(display_recovery_key(KEY)) == KEY


def test_normalize_dashes_and_newlines():
    grouped = "-".join(KEY[i : i + 8] for i in range(0, 64, 8))
    assert normalize_recovery_key(grouped.upper()) == KEY
    assert normalize_recovery_key(f"  {KEY[:32]}\n{KEY[32:]}\t\r\n") == KEY


def test_normalize_mixed_case():
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(KEY))
    assert normalize_recovery_key(mixed) == KEY


def test_normalize_counts_without_separators():
    with pytest.raises(RecoveryKeyError, match="expected 64 characters, got 63 \\(not counting spaces"):
        normalize_recovery_key(display_recovery_key(KEY)[:-1])


def test_normalize_rejects_65():
    with pytest.raises(RecoveryKeyError, match="expected 64 characters, got 65"):
        normalize_recovery_key(KEY + "a")


def test_normalize_names_entry_position():
    entry = display_recovery_key(KEY)
    bad = entry[:6] + "!" + entry[7:]
    with pytest.raises(RecoveryKeyError, match="character 7 of the entry is '!'"):
        normalize_recovery_key(bad)


def test_normalize_rejects_non_ascii_letter():
    with pytest.raises(RecoveryKeyError, match=r"U\+00C9"):
        normalize_recovery_key("\u00c9" + KEY[1:])


def test_display_groups_of_four():
    display = display_recovery_key(KEY)
    groups = display.split(" ")
    assert len(groups) == 16
    assert all(len(group) == 4 for group in groups)
    assert display.replace(" ", "") == KEY.upper()


def test_display_rejects_invalid_key():
    with pytest.raises(RecoveryKeyError):
        display_recovery_key(KEY[:-1])


# --- Other inputs ----------------------------------------------------------------------------------


def test_parse_aci_forms():
    expected = bytes.fromhex("659aa5f4a28dfcc11ea1b997537a3d95")
    assert parse_aci(ACI) == expected
    assert parse_aci(ACI.upper()) == expected
    assert parse_aci(ACI.replace("-", "")) == expected


@pytest.mark.parametrize("text", ["", "nope", "659aa5f4-a28d-fcc1-1ea1-b997537a3d9", "659aa5f4-a28d-fcc1-1ea1-b997537a3d95x"])
def test_parse_aci_rejects(text):
    with pytest.raises(UsageError, match="invalid ACI"):
        parse_aci(text)


def test_parse_token():
    assert parse_forward_secrecy_token(TOKEN_HEX) == b"\xab" * 32
    assert parse_forward_secrecy_token("0x" + TOKEN_HEX.upper()) == b"\xab" * 32


@pytest.mark.parametrize("text, rule", [("ab" * 31, "expected 64 hex digits, got 62"), ("zz" * 32, "not a hex digit")])
def test_parse_token_rejects(text, rule):
    with pytest.raises(UsageError, match=rule):
        parse_forward_secrecy_token(text)


def test_parse_token_error_hides_value():
    with pytest.raises(UsageError) as caught:
        parse_forward_secrecy_token("cd" * 31 + "zz")
    assert "cdcd" not in str(caught.value)


# --- Derivation inputs and reprs -----------------------------------------------------------------------


def test_message_key_repr_hides_keys():
    key = MessageBackupKey.from_recovery_key(KEY, parse_aci(ACI), b"\xab" * 32)
    text = repr(key) + str(key)
    for secret in (key.hmac_key, key.aes_key, key.backup_key, key.forward_secrecy_token):
        assert secret.hex() not in text
        assert repr(secret) not in text


def test_message_key_equality_ignores_extras():
    key = MessageBackupKey.from_recovery_key(KEY, parse_aci(ACI))
    assert key.backup_key is not None
    assert MessageBackupKey(key.hmac_key, key.aes_key) == key


@pytest.mark.parametrize("length", [31, 33])
def test_derivation_rejects_wrong_length(length):
    with pytest.raises(ValueError, match="backup_key must be 32 bytes"):
        derive_backup_id(b"\x00" * length, b"\x11" * 16)


def test_media_id_accepts_empty_name():
    assert len(derive_media_id(b"\x01" * 32, "")) == 15


def test_derive_backup_key_validates():
    with pytest.raises(RecoveryKeyError):
        derive_backup_key(KEY.upper())


# --- CLI: keys ----------------------------------------------------------------------------------------


def test_cli_keys_new(capsys):
    assert main(["keys", "new"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    validate_recovery_key(lines[0])


def test_cli_keys_new_display(capsys):
    assert main(["keys", "new", "--display"]) == 0
    first, second = capsys.readouterr().out.splitlines()
    validate_recovery_key(first)
    assert second == display_recovery_key(first)


def test_cli_keys_derive_json(capsys):
    assert main(["keys", "derive", "--recovery-key", KEY, "--aci", ACI, "--forward-secrecy-token", TOKEN_HEX, "--json"]) == 0
    derived = json.loads(capsys.readouterr().out)
    expected = MessageBackupKey.from_recovery_key(KEY, parse_aci(ACI), b"\xab" * 32)
    assert derived["backup_key"] == "ea26a2ddb5dba5ef9e34e1b8dea1f5ae7f255306a6d2d883e542306eaa9fe985"
    assert derived["backup_id"] == "8a624fbc45379043f39f1391cddc5fe8"
    assert derived["hmac_key"] == expected.hmac_key.hex()
    assert derived["aes_key"] == expected.aes_key.hex()
    assert derived["forward_secrecy"] is True
    assert derived["svr_key"] == "cdfecb856b148ca1c7f7557904f1ec698d0ccc4d4d68ed4c58c74a21e5c1c6c1"
    assert derived["backup_id_public_key"].startswith("05")
    for name in ("backup_id_private_key", "local_metadata_key", "legacy_hmac_key", "svr_logging_key"):
        assert name in derived


def test_cli_keys_derive_text(capsys):
    assert main(["keys", "derive", "--recovery-key", display_recovery_key(KEY), "--aci", ACI]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert lines["backup_id"] == "8a624fbc45379043f39f1391cddc5fe8"
    assert lines["hmac_key"] == "f425e22a607c529717e1e1b29f9fe139f9d1c7e7d01e371c7753c544a3026649"


def test_cli_keys_derive_media(capsys):
    root = "ea26a2ddb5dba5ef9e34e1b8dea1f5ae7f255306a6d2d883e542306eaa9fe985"
    argv = ["keys", "derive", "--recovery-key", KEY, "--aci", ACI, "--media-root-key", root, "--media-name", "example.jpg", "--json"]
    assert main(argv) == 0
    derived = json.loads(capsys.readouterr().out)
    assert derived["media_id"] == "239cada7829564eb551a51aab15ebe"
    assert derived["media_backup_id"] == "8a624fbc45379043f39f1391cddc5fe8"


def test_cli_key_from_environment(capsys, monkeypatch):
    monkeypatch.setenv("BACKUP_HARNESS_RECOVERY_KEY", display_recovery_key(KEY))
    assert main(["keys", "derive", "--aci", ACI, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["backup_id"] == "8a624fbc45379043f39f1391cddc5fe8"


def test_cli_key_from_file(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("BACKUP_HARNESS_RECOVERY_KEY", raising=False)
    key_file = tmp_path / "key.txt"
    key_file.write_text(display_recovery_key(KEY) + "\nignored second line\n")
    assert main(["keys", "derive", "--recovery-key-file", str(key_file), "--aci", ACI, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["backup_id"] == "8a624fbc45379043f39f1391cddc5fe8"


def test_cli_keys_validate(capsys):
    assert main(["keys", "validate", "--recovery-key", display_recovery_key(KEY)]) == 0
    assert KEY in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--recovery-key", KEY[:-1], "--aci", ACI], "expected 64 characters, got 63"),
        (["--recovery-key", KEY + "x", "--aci", ACI], "expected 64 characters, got 65"),
        (["--recovery-key", KEY[:-1] + "#", "--aci", ACI], "character 64 of the entry is '#'"),
        (["--recovery-key", KEY, "--aci", "not-a-uuid"], "invalid ACI 'not-a-uuid'"),
        (["--recovery-key", KEY, "--aci", ACI, "--forward-secrecy-token", "abc"], "expected 64 hex digits, got 3"),
        (["--recovery-key", KEY, "--aci", ACI, "--media-root-key", "00"], "--media-root-key: 1 bytes"),
        (["--recovery-key", KEY, "--aci", ACI, "--media-name", "x"], "--media-name needs --media-root-key"),
        (["--recovery-key-file", "/nonexistent/key.txt", "--aci", ACI], "file not found"),
        (["--aci", ACI], "missing recovery key"),
    ],
)
def test_cli_keys_derive_rejects(argv, expected, capsys, monkeypatch):
    monkeypatch.delenv("BACKUP_HARNESS_RECOVERY_KEY", raising=False)
    assert main(["keys", "derive", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert expected in lines[0]
    assert "Traceback" not in captured.err
    assert KEY[:16] not in captured.err


def test_cli_both_key_options_rejected(capsys, tmp_path):
    key_file = tmp_path / "key.txt"
    key_file.write_text(KEY)
    assert main(["keys", "validate", "--recovery-key", KEY, "--recovery-key-file", str(key_file)]) == 2
    assert "not both" in capsys.readouterr().err


def test_cli_empty_key_file(capsys, tmp_path):
    key_file = tmp_path / "key.txt"
    key_file.write_text("\n")
    assert main(["keys", "validate", "--recovery-key-file", str(key_file)]) == 2
    assert "first line is empty" in capsys.readouterr().err
