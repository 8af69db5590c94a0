"""Exclusion: view-once messages are tombstones, disappearing messages at or under 24 h or with
under 24 h left are absent, the rest keep their timers, and nothing of an excluded message
reaches the server.

The module loads the disappearing-message matrix and the view-once scenario on a paid-tier
account (so media is copied to the media tier), plants canaries in every message, backs up
once and checks the archive against each message's fate. Fates are computed at the archive's
own backup time with the ``--policy`` rules. Under ``--policy ios`` the read or sent messages
whose timer never started are not loaded: iOS does not repair them, and libsignal rejects
them unstarted (``rejected_unstarted``).
"""

from __future__ import annotations

import random

import pytest

from device_support import (
    DAY_MS,
    back_up,
    decrypted_plaintext,
    describe_findings,
    download_archive,
    expected_fate,
    find_item,
    media_objects,
    read_archive,
    rejected_unstarted,
    scenario_path,
    timer_start,
)
from harness.canaries import plant_canaries, scan_for
from harness.scenario import load_scenario, resolve

pytestmark = pytest.mark.tier("paid")

SCENARIOS = ("disappearing-matrix", "view-once")


@pytest.fixture(scope="module")
def run(recorder, stub, target, account, recovery_key, policy, tmp_path_factory):
    """One paid-tier backup of both scenarios, with canaries, and its decrypted archive."""
    messages = []
    canary_sets = []
    now_ms = target.clock_ms()
    for name in SCENARIOS:
        planted, canaries = plant_canaries(load_scenario(scenario_path(name)), random.Random())
        resolved = resolve(planted, now_ms)
        # iOS keeps these timers unstarted and libsignal then rejects the whole backup, so
        # the matrix's Android repair cases run under the android policy only.
        loaded = [message for message in resolved["messages"] if not rejected_unstarted(message, policy)]
        resolved = {**resolved, "messages": loaded}
        target.load_scenario(resolved)
        messages.extend(resolved["messages"])
        canary_sets.append(canaries)
    back_up(target)
    folder = tmp_path_factory.mktemp("exclusion")
    path = download_archive(stub, recovery_key, account.aci, folder / "archive.bin")
    view = read_archive(target, path, recovery_key, account.aci, policy=policy, tier="paid")
    fates = {message["id"]: expected_fate(message, view.info.backup_time_ms, policy) for message in messages}
    return {
        "view": view,
        "messages": {message["id"]: message for message in messages},
        "fates": fates,
        "canaries": canary_sets,
        "plaintext": decrypted_plaintext(target, path, recovery_key, account.aci),
        "requests": recorder.requests(),
    }


def archived(run, message):
    """Return the archive's chat item for a scenario message, or None.

    Scenario texts are unique (the canary makes them so); items without text are matched by
    sent time and kind.
    """
    return find_item(run["view"].items, message)


def ids_with(run, fate, predicate=lambda message: True):
    return [
        message_id
        for message_id, expected in run["fates"].items()
        if expected == fate and predicate(run["messages"][message_id])
    ]


def rule_findings(run, prefix):
    return [finding for finding in run["view"].errors() if finding.rule.startswith(prefix)]


def test_archive_summary_saved(run, artifacts):
    artifacts.save_json("archive-summary.json", run["view"].to_json())
    assert run["view"].items, "the archive holds no chat items"


def test_short_timers_absent(run):
    short = ids_with(run, "excluded", lambda m: m["expires_in_ms"] is not None and m["expires_in_ms"] <= DAY_MS)
    assert short, "the scenario has no timer of 24 h or less"
    present = [message_id for message_id in short if archived(run, run["messages"][message_id]) is not None]
    findings = rule_findings(run, "exclusion.short-timer")
    assert not findings, describe_findings(findings)
    assert not present, f"messages with a timer of 24 h or less are in the archive: {present}"


def test_expiring_within_24h_absent(run):
    soon = ids_with(run, "excluded", lambda m: m["expires_in_ms"] is not None and m["expires_in_ms"] > DAY_MS)
    assert soon, "the scenario has no message expiring within 24 h"
    present = [message_id for message_id in soon if archived(run, run["messages"][message_id]) is not None]
    findings = rule_findings(run, "exclusion.expires-within-24h")
    assert not findings, describe_findings(findings)
    assert not present, f"messages with under 24 h left are in the archive: {present}"


def test_long_timers_kept_unchanged(run, policy):
    kept = ids_with(run, "kept", lambda m: m["expires_in_ms"] is not None)
    assert kept, "the scenario has no disappearing message to keep"
    for message_id in kept:
        message = run["messages"][message_id]
        item = archived(run, message)
        assert item is not None, f"message {message_id}: missing from the archive, but its timer has more than 24 h left"
        assert item.expires_in_ms == message["expires_in_ms"], (
            f"{item.location()}: message {message_id} has expiresInMs {item.expires_in_ms}, "
            f"expected {message['expires_in_ms']}"
        )
        expected_start = timer_start(message, policy)
        assert item.expire_start_ms == expected_start, (
            f"{item.location()}: message {message_id} has expireStartDate {item.expire_start_ms}, "
            f"expected {expected_start}"
        )


def test_messages_without_timer_kept(run):
    for message_id in ids_with(run, "kept", lambda m: m["expires_in_ms"] is None):
        assert archived(run, run["messages"][message_id]) is not None, f"message {message_id}: missing from the archive"


def test_view_once_are_tombstones(run):
    tombstones = ids_with(run, "tombstone")
    assert tombstones, "the scenario has no view-once message"
    for message_id in tombstones:
        item = archived(run, run["messages"][message_id])
        assert item is not None, f"view-once message {message_id}: missing (expected a tombstone)"
        assert item.kind == "view_once", f"{item.location()}: view-once message {message_id} stored as {item.kind}"
        assert not item.view_once_has_attachment, f"{item.location()}: view-once attachment present (message {message_id})"
    findings = rule_findings(run, "view-once.attachment")
    assert not findings, describe_findings(findings)


def test_view_once_quotes_have_no_attachment(run):
    findings = rule_findings(run, "view-once.quote")
    assert not findings, describe_findings(findings)


def test_excluded_content_not_in_archive(run):
    excluded = set(ids_with(run, "excluded")) | set(ids_with(run, "tombstone"))
    for canaries in run["canaries"]:
        needles = {
            label: needle
            for label, needle in canaries.needles().items()
            if (canaries.get(label.partition("/")[0]).message_id in excluded)
        }
        matches = scan_for(run["plaintext"], needles)
        assert not matches, f"decrypted archive: {canaries.describe(matches[0])}"


def test_no_media_of_excluded_messages(run, stub, account):
    objects = media_objects(stub, run["view"], account.aci)
    assert not objects.unreferenced, (
        f"{len(objects.unreferenced)} media-tier object(s) belong to no attachment of the archive, "
        f"e.g. {objects.unreferenced[0]} (view-once or excluded media uploaded)"
    )


def test_no_structure_findings(run):
    findings = rule_findings(run, "validity.")
    assert not findings, describe_findings(findings)
