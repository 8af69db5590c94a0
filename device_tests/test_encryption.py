"""Encryption: every archive opens with the recovery key only, its MAC holds, each has a fresh
IV and no repeated ciphertext block, and nothing secret or planted leaks anywhere.

The module plants canaries (unique random strings) in message bodies, captions, attachment
bytes and file names and backs up twice with the same content. The tests then check every
archive the stub received, every recorded request, the app's log and the app's files.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from device_support import (
    aci_bytes,
    back_up,
    container_parts,
    leak_needles,
    read_archive,
    scan_files,
    scenario_path,
    uploaded_archives,
)
from harness import keys
from harness.canaries import plant_canaries, scan_for
from harness.errors import ArchiveError, MacMismatchError
from harness.frames import open_frames
from harness.scenario import load_scenario, resolve

BLOCK = 16


@pytest.fixture(scope="module")
def run(recorder, target, account, recovery_key, scenario_override, tmp_path_factory):
    """Two backups of a canary-planted scenario, and the archives the stub received."""
    scenario = load_scenario(scenario_path("daily-life", scenario_override))
    planted, canaries = plant_canaries(scenario, random.Random())
    target.load_scenario(resolve(planted, target.clock_ms()))
    back_up(target, "first backup")
    back_up(target, "second backup")
    folder = tmp_path_factory.mktemp("archives")
    requests = recorder.requests()
    archives = []
    for index, data in enumerate(uploaded_archives(requests), start=1):
        path = folder / f"archive-{index}.bin"
        path.write_bytes(data)
        archives.append(path)
    return {
        "requests": requests,
        "archives": archives,
        "canaries": canaries,
        "log": target.read_log(),  # the whole log: the key was shown before this fixture ran
        "files": target.snapshot_files(tmp_path_factory.mktemp("files")),
    }


def test_stub_received_both_archives(run):
    assert len(run["archives"]) == 2, f"expected 2 uploaded archives, the stub received {len(run['archives'])}"


def test_archive_opens_with_recovery_key(run, target, recovery_key, account, policy):
    for number, path in enumerate(run["archives"], start=1):
        try:
            view = read_archive(target, path, recovery_key, account.aci, policy=policy)
        except ArchiveError as error:
            pytest.fail(f"archive {number}: does not open with the recovery key: {error}")
        assert view.items, f"archive {number}: opened but holds no chat items"


def test_archive_mac_valid(run, target, recovery_key, account):
    for number, path in enumerate(run["archives"], start=1):
        try:
            read_archive(target, path, recovery_key, account.aci)
        except MacMismatchError as error:
            pytest.fail(f"archive {number}: MAC does not match with the right key: {error}")
        except ArchiveError as error:
            pytest.fail(f"archive {number}: not a readable archive: {error}")


@pytest.mark.parametrize("wrong", ["other recovery key", "other ACI"])
def test_archive_rejects_other_keys(run, target, recovery_key, account, wrong):
    other_key = keys.generate_recovery_key() if wrong == "other recovery key" else keys.normalize_recovery_key(recovery_key)
    other_aci = aci_bytes(account.aci) if wrong == "other recovery key" else bytes(16)
    for number, path in enumerate(run["archives"], start=1):
        try:
            with open_frames(path, other_key, other_aci) as messages:
                next(iter(messages))
        except ArchiveError:
            continue
        pytest.fail(f"archive {number}: opened with the {wrong}")


def test_fresh_iv_per_archive(run):
    ivs = [container_parts(path)[0] for path in run["archives"]]
    repeated = [number for number, iv in enumerate(ivs, start=1) if ivs.index(iv) != number - 1]
    assert not repeated, f"archive(s) {repeated}: IV {ivs[repeated[0] - 1].hex()} was used before"


def test_no_repeated_ciphertext_blocks(run):
    seen: dict[bytes, str] = {}
    for number, path in enumerate(run["archives"], start=1):
        ciphertext = container_parts(path)[1]
        for offset in range(0, len(ciphertext) - BLOCK + 1, BLOCK):
            block = ciphertext[offset : offset + BLOCK]
            place = f"archive {number}, ciphertext block {offset // BLOCK}"
            assert block not in seen, f"{place}: repeats {seen[block]}"
            seen[block] = place


def test_no_canary_in_requests(run):
    needles = run["canaries"].needles()
    for request in run["requests"]:
        matches = scan_for(request.haystack(), needles)
        assert not matches, f"{request.location()}: {run['canaries'].describe(matches[0])}"


def test_recovery_key_not_in_requests(run, recovery_key):
    needles = leak_needles(recovery_key)
    for request in run["requests"]:
        matches = scan_for(request.haystack(), needles)
        assert not matches, f"{request.location()}: contains the {matches[0].label} ({matches[0].container})"


def test_no_canary_in_log(run):
    text = "\n".join(line.text for line in run["log"]).encode("utf-8")
    matches = scan_for(text, run["canaries"].needles())
    assert not matches, f"app log: {run['canaries'].describe(matches[0])}"


def test_recovery_key_not_in_log(run, recovery_key):
    needles = leak_needles(recovery_key)
    for line in run["log"]:
        matches = scan_for(line.text.encode("utf-8"), needles)
        assert not matches, f"app log at byte {line.position.offset}: contains the {matches[0].label}"


def test_no_canary_outside_message_store(run, target):
    skipped = target.message_store_paths()
    for relative, match in scan_files(run["files"], run["canaries"].needles(), skip=skipped):
        pytest.fail(f"app file {relative}: {run['canaries'].describe(match)}")


def test_recovery_key_not_in_app_files(run, target, recovery_key):
    needles = leak_needles(recovery_key)
    for relative, match in scan_files(run["files"], needles, skip=target.key_store_paths()):
        pytest.fail(f"app file {relative}: contains the {match.label} outside the key store")


def test_no_canary_or_key_in_packet_capture(run, target, recovery_key):
    """Scan the emulator's packet capture (``--pcap``) for the canaries and the recovery key.

    Only cleartext can match, so a finding is data the app sent unencrypted over the
    emulated network. NOTE: the app reaches the stub through ``adb reverse``, whose traffic
    travels over the adb connection rather than the emulated network, so the capture is not
    expected to hold the stub's requests (the request tests above cover those).
    """
    scan_packets = getattr(target, "scan_packets", None)
    if scan_packets is None:
        pytest.skip(f"target {target.name} offers no packet capture; pass --pcap with the file of "
                    "`emulator -tcpdump` on the Android target")
    key_needles = leak_needles(recovery_key)
    for finding in scan_packets({**run["canaries"].needles(), **key_needles}):
        place = f"packet capture, {finding.flow.describe()} from packet {finding.first_packet}"
        if finding.match.label in key_needles:
            pytest.fail(f"{place}: contains the {finding.match.label} ({finding.match.container})")
        pytest.fail(f"{place}: {run['canaries'].describe(finding.match)}")
