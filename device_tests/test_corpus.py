"""Corpus round trip: real Signal frame streams through the harness, the stub and the target.

Collected only with ``--corpus DIR`` (``backup-harness run --corpus DIR``). For every
``.binproto`` in DIR:

* the archive rules find nothing in it (real backups must not trip a false finding);
* it is encrypted for this module's account (modern layout, fresh forward-secrecy token),
  libsignal (``MessageBackup.validate``) accepts the archive, and its frames decrypt byte for
  byte to the original.

For one file of each of ``RESTORE_SAMPLE`` categories (the name without its number), the
archive is also stored at the account's backup path on the stub. The target restores it on a
wiped app and backs up again. libsignal's canonical form (ComparableBackup) of the new
archive must equal the original's.
NOTE: a restore costs a wipe and an app start (about 1.3 s on the reference app), so the
target round trip is sampled. All files go through the other checks.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from device_support import aci_bytes, archive_messages, archive_object_path, back_up
from harness import keys, oracle
from harness.archive import write_archive
from harness.device_session import stub_endpoints
from harness.frames import encode_message, iter_messages, open_frames, read_file_chunks
from harness.reader import scan
from harness.rules import RuleOptions, archive_rules, collect_findings, errors

pytestmark = pytest.mark.no_capture

# How many categories (file names without their _NN suffix) the target restores, spread over
# the sorted category list.
RESTORE_SAMPLE = 12


def corpus_files(config: pytest.Config) -> list[Path]:
    folder = config.getoption("corpus")
    return sorted(Path(folder).glob("*.binproto")) if folder else []


def category(path: Path) -> str:
    return re.sub(r"_\d+$", "", path.stem)


def restore_sample(files: list[Path]) -> list[Path]:
    first_of: dict[str, Path] = {}
    for path in files:
        first_of.setdefault(category(path), path)
    names = sorted(first_of)
    step = max(1, len(names) // RESTORE_SAMPLE)
    return [first_of[name] for name in names[::step][:RESTORE_SAMPLE]]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    files = corpus_files(metafunc.config)
    if "corpus_file" in metafunc.fixturenames:
        metafunc.parametrize("corpus_file", files, ids=[path.stem for path in files])
    if "sampled_file" in metafunc.fixturenames:
        sample = restore_sample(files)
        metafunc.parametrize("sampled_file", sample, ids=[category(path) for path in sample])


@pytest.fixture(scope="module")
def account_backup(stub, target, account, recovery_key):
    """An account with one backup, so its backup id has a record and an archive path."""
    back_up(target, "initial backup")
    path = archive_object_path(stub, recovery_key, account.aci)
    assert path is not None, "the initial backup left no archive path on the stub"
    return {"object": path, "key": keys.normalize_recovery_key(recovery_key)}


def read_messages(path: Path) -> list[bytes]:
    return list(iter_messages(read_file_chunks(path)))


def test_corpus_archive_round_trip(corpus_file, account_backup, account, tmp_path):
    rules = archive_rules(RuleOptions())
    messages = read_messages(corpus_file)
    scan(messages, rules)
    findings = errors(collect_findings(rules))
    assert not findings, f"{corpus_file.name}: false finding: {findings[0].message}"

    token = os.urandom(keys.FORWARD_SECRECY_TOKEN_LENGTH)
    key = keys.MessageBackupKey.from_recovery_key(account_backup["key"], aci_bytes(account.aci), token)
    stored = tmp_path / "archive.bin"
    write_archive((encode_message(message) for message in messages), stored, key, layout="modern")

    verdict = oracle.validate_archive(stored, recovery_key=account_backup["key"], aci=account.aci, forward_secrecy_token=token)
    assert verdict.ok, f"{corpus_file.name}: libsignal rejects the encrypted archive: {verdict.error}"
    with open_frames(stored, account_backup["key"], aci_bytes(account.aci), token) as decrypted:
        assert list(decrypted) == messages, f"{corpus_file.name}: the archive decrypts to other frames"


def test_corpus_restore_round_trip(sampled_file, account_backup, stub, target, account, recovery_key, tmp_path):
    messages = read_messages(sampled_file)
    key = keys.MessageBackupKey.from_recovery_key(account_backup["key"], aci_bytes(account.aci))
    planted = write_archive((encode_message(message) for message in messages), tmp_path / "plant.bin", key, layout="legacy")
    stub.admin.put_object(account_backup["object"], Path(planted.path).read_bytes())

    target.wipe()
    target.start()
    target.point_at(stub_endpoints(stub))
    target.register_account(account)
    restored = target.restore(recovery_key)
    assert restored.ok, f"{sampled_file.name}: restore failed: {restored.error}"
    back_up(target, "backup after the restore")

    new_archive = stub.admin.download_object(account_backup["object"], tmp_path / "new.bin")
    new_stream = tmp_path / "new.binproto"
    new_stream.write_bytes(b"".join(encode_message(m) for m in archive_messages(target, new_archive, recovery_key, account.aci)))
    original = oracle.comparable_backup(sampled_file)
    again = oracle.comparable_backup(new_stream)
    assert again.text == original.text, f"{sampled_file.name}: the target's new backup differs from the restored one"
