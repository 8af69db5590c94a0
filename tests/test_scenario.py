"""Scenario files: shipped fixtures, validation errors with line numbers, generators, resolve()."""

from __future__ import annotations

import itertools
import json
import random
import re
import textwrap
from pathlib import Path

import pytest

import harness.scenario_resolve as scenario_resolve
from harness.errors import ScenarioError, UsageError
from harness.scenario import (
    attachment_bytes,
    derive_aci,
    iter_attachment_bytes,
    load_scenario,
    resolve,
    scenario_schema,
    thumbnail_bytes,
    validate_scenario_file,
)
from harness.timespec import (
    ABSOLUTE_TIME_PATTERN,
    DURATION_PATTERN,
    TIME_PATTERN,
    format_duration,
    parse_absolute_time,
    parse_duration,
    parse_time,
)

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "fixtures" / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.yaml"))

NOW = 1_740_830_400_000  # 2025-03-01T12:00:00Z
MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000

HEADER = """\
name: broken
self:
  name: Alice
recipients:
  contacts:
    - {id: bob, name: Bob}
    - {id: carol, name: Carol}
    - {id: dan, name: Dan}
  groups:
    - {id: club, title: Club, members: [bob, carol]}
chats:
  - with: bob
  - with: club
messages:
  - id: m1
    chat: bob
    direction: incoming
    text: first
    sent: -1d
"""


def write(tmp_path: Path, body: str, name: str = "x.yaml") -> Path:
    """Write HEADER plus ``body``: more message entries, or a top-level ``steps:`` list."""
    body = textwrap.dedent(body)
    if not body.startswith("steps:"):
        body = textwrap.indent(body, "  ")
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def marked_line(path: Path) -> int:
    """Return the 1-based line that carries the `# <-` marker in the file."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if "# <-" in line:
            return number
    raise AssertionError("test scenario has no # <- marker")


def error_of(path: Path) -> str:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    return str(caught.value)


def assert_error_at_marker(path: Path, *fragments: str) -> str:
    message = error_of(path)
    assert message.startswith(f"{path}:{marked_line(path)}:"), message
    for fragment in fragments:
        assert fragment in message, message
    return message


# Shipped scenarios ---------------------------------------------------------------------------
def test_shipped_scenarios_exist():
    names = {path.stem for path in SHIPPED}
    assert {"daily-life", "disappearing-matrix", "media-age-matrix", "large-chat", "daily-replacement"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])
def test_shipped_scenario_validates(path):
    scenario = validate_scenario_file(path)
    assert scenario.name == path.stem
    resolved = resolve(scenario, NOW)
    assert len(resolved["messages"]) == scenario.message_count()


def test_daily_life_has_every_content_kind():
    messages = list(resolve(load_scenario(SCENARIOS / "daily-life.yaml"), NOW)["messages"])
    chats = resolve(load_scenario(SCENARIOS / "daily-life.yaml"), NOW)["chats"]
    assert [chat["kind"] for chat in chats].count("contact") == 3
    assert [chat["kind"] for chat in chats].count("group") == 1
    kinds = {message["kind"] for message in messages}
    assert {"text", "media", "view_once", "sticker", "update"} <= kinds
    assert any(message["reactions"] for message in messages)
    assert any(message["quote"] for message in messages)
    assert any(message["edits"] for message in messages)
    assert any(message["deleted"] for message in messages)
    timers = [message["expires_in_ms"] for message in messages if message["expires_in_ms"]]
    assert len(timers) >= 2
    assert min(timers) > DAY
    ages = {(NOW - a["uploaded_ms"]) // DAY for m in messages for a in m["attachments"]}
    assert len(ages) >= 3


def _android_fate(message: dict, backup_ms: int) -> str:
    """Android's rule for remote backups, written independently of the fixture."""
    timer = message["expires_in_ms"]
    if message["kind"] == "update" or not timer:
        return "kept"
    if timer <= DAY:
        return "excluded"
    start = message["expire_start_ms"]
    outgoing_done = message["direction"] == "outgoing" and message["status"] not in ("pending", "failed")
    incoming_read = message["direction"] == "incoming" and message["read"] and start is None
    if outgoing_done or incoming_read:
        start = message["received_ms"]
    if start is None:
        return "kept"
    return "excluded" if start + timer < backup_ms + DAY else "kept"


def _ios_fate(message: dict, backup_ms: int) -> str:
    timer = message["expires_in_ms"]
    if message["kind"] == "update" or not timer:
        return "kept"
    if timer <= DAY:
        return "excluded"
    start = message["expire_start_ms"]
    if start is None:
        return "kept"
    return "excluded" if start + timer <= backup_ms + DAY else "kept"


def test_disappearing_matrix_expectations_follow_rules():
    messages = list(resolve(load_scenario(SCENARIOS / "disappearing-matrix.yaml"), NOW)["messages"])
    for message in messages:
        assert message["expect"]["android"] == _android_fate(message, NOW), message["id"]
        assert message["expect"]["ios"] == _ios_fate(message, NOW), message["id"]


def test_disappearing_matrix_covers_boundaries():
    messages = list(resolve(load_scenario(SCENARIOS / "disappearing-matrix.yaml"), NOW)["messages"])
    timers = {message["expires_in_ms"] for message in messages}
    assert {HOUR, DAY - 1, DAY, DAY + 1, 7 * DAY} <= timers
    split = [m["id"] for m in messages if m["expect"] == {"android": "kept", "ios": "excluded"}]
    assert len(split) >= 2
    started = [m for m in messages if m["expire_start_ms"] is not None]
    assert any(m["expire_start_ms"] + m["expires_in_ms"] == NOW + DAY for m in started)


def test_media_age_matrix_expectations_follow_window():
    window = 45 * DAY
    messages = list(resolve(load_scenario(SCENARIOS / "media-age-matrix.yaml"), NOW)["messages"])
    ages = []
    for message in messages:
        for attachment in message["attachments"]:
            age = NOW - attachment["uploaded_ms"]
            ages.append(age)
            expected_free = "available" if age < window else "unavailable"
            assert attachment["expect"] == {"free": expected_free, "paid": "available"}, message["id"]
    wanted = [1 * DAY, 44 * DAY, 44 * DAY + 23 * HOUR, 45 * DAY, 45 * DAY + HOUR, 46 * DAY, 90 * DAY]
    assert set(wanted) <= set(ages)


def test_daily_replacement_expectations_match_phone_state():
    resolved = resolve(load_scenario(SCENARIOS / "daily-replacement.yaml"))
    phone = {message["id"]: message for message in resolved["messages"]}
    backups = 0
    days = {resolved["now_ms"]}
    backed_up: set[str] = set()
    for step in resolved["steps"]:
        days.add(step["clock_ms"])
        if step["action"] == "add_messages":
            phone.update({message["id"]: message for message in step["messages"]})
        elif step["action"] == "delete_messages":
            for message_id in step["ids"]:
                del phone[message_id]
        elif step["action"] == "backup":
            backups += 1
            backed_up = {
                message_id
                for message_id, message in phone.items()
                if _android_fate(message, step["clock_ms"]) == "kept"
            }
        elif step["action"] == "expect":
            assert set(step["present"]) <= backed_up
            assert not set(step["absent"]) & backed_up
    assert backups >= 3
    assert len(days) >= 3


def test_large_chat_generator_has_exactly_100000():
    scenario = load_scenario(SCENARIOS / "large-chat.yaml")
    resolved = resolve(scenario, NOW)
    assert scenario.message_count() == 100_000
    assert len(resolved["messages"]) == 100_000
    assert len(resolved["chats"]) == 1


def test_large_chat_expands_lazily(monkeypatch):
    calls = []
    original = scenario_resolve.resolve_message

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(scenario_resolve, "resolve_message", counting)
    resolved = resolve(load_scenario(SCENARIOS / "large-chat.yaml"), NOW)
    assert len(calls) == 0
    first_three = list(itertools.islice(resolved["messages"], 3))
    assert len(calls) == 3
    assert [message["id"] for message in first_three] == ["bulk-1", "bulk-2", "bulk-3"]


def test_large_chat_first_and_last_items():
    resolved = resolve(load_scenario(SCENARIOS / "large-chat.yaml"), NOW)
    first = last = None
    count = 0
    for message in resolved["messages"]:
        if first is None:
            first = message
        last = message
        count += 1
    assert count == 100_000
    assert first["id"] == "bulk-1"
    assert first["text"] == "Message 1 of 100000 in a long chat"
    assert first["sent_ms"] == NOW - 70 * DAY
    assert first["direction"] == "incoming"
    assert first["read"] is True
    assert last["id"] == "bulk-100000"
    assert last["text"] == "Message 100000 of 100000 in a long chat"
    assert last["sent_ms"] == NOW - 70 * DAY + 99_999 * MINUTE
    assert last["direction"] == "outgoing"
    assert last["status"] == "read"


def test_message_stream_list_and_reiterate(tmp_path):
    path = write(tmp_path, """\
      - repeat: 5
        start: -1h
        interval: 10m
        message: {id: "g{n}", chat: bob, text: "n={n} i={i}"}
        cycle: {direction: [incoming, outgoing]}
    """)
    stream = resolve(load_scenario(path), NOW)["messages"]
    first = list(stream)
    second = list(stream)
    assert first == second
    assert len(first) == len(stream) == 6
    assert [m["id"] for m in first] == ["m1", "g1", "g2", "g3", "g4", "g5"]
    assert first[2]["text"] == "n=2 i=1"
    assert [m["direction"] for m in first[1:]] == ["incoming", "outgoing"] * 2 + ["incoming"]
    assert [m["sent_ms"] for m in first[1:]] == [NOW - HOUR + k * 10 * MINUTE for k in range(5)]


# Malformed files -----------------------------------------------------------------------------
def test_bad_duration_message_matches_documented_form(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: bob
        direction: incoming
        sent: -1h
        expires_in: 25x  # <-
    """)
    message = error_of(path)
    line = marked_line(path)
    assert message.startswith(f"{path}:{line}:17: messages[1].expires_in: '25x' is not a duration like 24h or 86400000ms")


def test_wrong_type_reports_line(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: bob
        direction: incoming
        sent: -1h
        read: yes  # <-
    """)
    assert_error_at_marker(path, "messages[1].read", "expected true or false, got 'yes'")


def test_list_where_mapping_expected(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: bob
        direction: incoming
        sent: -1h
        update: [timer_change]  # <-
    """)
    assert_error_at_marker(path, "messages[1].update", "expected a mapping")


def test_unknown_field_reports_key_line(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: bob
        direction: incoming
        sent: -1h
        colour: blue  # <-
    """)
    message = assert_error_at_marker(path, "messages[1].colour", "unknown field 'colour'")
    assert ":9: " not in message


def test_unknown_top_level_field(tmp_path):
    path = tmp_path / "top.yaml"
    path.write_text("titel: nope  # <-\n" + HEADER, encoding="utf-8")
    assert_error_at_marker(path, "titel", "unknown field 'titel'")


def test_missing_required_field(tmp_path):
    path = write(tmp_path, """\
      - id: m2  # <-
        direction: incoming
        sent: -1h
    """)
    assert_error_at_marker(path, "messages[1]", "missing required field 'chat'")


def test_bad_enum_value(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: bob
        direction: sideways  # <-
        sent: -1h
    """)
    assert_error_at_marker(path, "messages[1].direction", "'sideways' is not one of: incoming, outgoing")


def test_bad_relative_time(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: bob
        direction: incoming
        sent: yesterday  # <-
    """)
    assert_error_at_marker(path, "messages[1].sent", "'yesterday' is not a time like")


def test_time_without_sign_rejected(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: bob
        direction: incoming
        sent: 3d  # <-
    """)
    assert_error_at_marker(path, "messages[1].sent", "'3d' is not a time")


def test_impossible_calendar_date(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: bob
        direction: incoming
        sent: 2025-02-30T10:00:00Z  # <-
    """)
    assert_error_at_marker(path, "messages[1].sent", "not a valid date")


def test_time_without_offset_rejected(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: bob
        direction: incoming
        sent: 2025-02-10T10:00:00  # <-
    """)
    assert_error_at_marker(path, "messages[1].sent", "is not a time")


def test_unknown_chat_reference(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: nobody  # <-
        direction: incoming
        sent: -1h
    """)
    assert_error_at_marker(path, "messages[1].chat", "unknown chat 'nobody'")


def test_unknown_recipient_in_chat(tmp_path):
    path = tmp_path / "chat.yaml"
    path.write_text(HEADER.replace("  - with: club\n", "  - with: club\n  - with: zed  # <-\n"), encoding="utf-8")
    assert_error_at_marker(path, "chats[2].with", "unknown recipient 'zed'")


def test_unknown_group_member(tmp_path):
    path = tmp_path / "group.yaml"
    path.write_text(HEADER.replace("members: [bob, carol]}", "members: [bob, zoe]}  # <-"), encoding="utf-8")
    assert_error_at_marker(path, "recipients.groups[0].members[1]", "unknown contact 'zoe'")


def test_duplicate_message_id(tmp_path):
    path = write(tmp_path, """\
      - id: m1  # <-
        chat: bob
        direction: outgoing
        sent: -1h
    """)
    assert_error_at_marker(path, "messages[1].id", "duplicate message id 'm1'")


def test_duplicate_contact_id(tmp_path):
    path = tmp_path / "contacts.yaml"
    path.write_text(HEADER.replace("    - {id: dan, name: Dan}\n", "    - {id: bob, name: Dan}  # <-\n"), encoding="utf-8")
    assert_error_at_marker(path, "recipients.contacts[2].id", "duplicate contact id 'bob'")


def test_duplicate_generated_id(tmp_path):
    path = write(tmp_path, """\
      - repeat: 3
        start: -1h
        interval: 1m
        message: {id: "m{n}", chat: bob, direction: incoming}  # <-
    """)
    assert_error_at_marker(path, "messages[1].message.id", "duplicate message id 'm1'")


def test_repeated_id_without_counter(tmp_path):
    path = write(tmp_path, """\
      - repeat: 3
        start: -1h
        interval: 1m
        message: {id: same, chat: bob, direction: incoming}  # <-
    """)
    assert_error_at_marker(path, "messages[1].message.id", "needs {n} or {i}")


def test_generator_template_with_sent(tmp_path):
    path = write(tmp_path, """\
      - repeat: 3
        start: -1h
        interval: 1m
        message:
          chat: bob
          direction: incoming
          sent: -2h  # <-
    """)
    assert_error_at_marker(path, "messages[1].message.sent", "remove sent")


def test_generator_bad_cycle_value(tmp_path):
    path = write(tmp_path, """\
      - repeat: 3
        start: -1h
        interval: 1m
        message: {chat: bob, direction: incoming}
        cycle:
          expires_in:
            - 1d
            - 3q  # <-
    """)
    assert_error_at_marker(path, "messages[1].cycle.expires_in[1]", "'3q' is not a duration")


def test_generator_variant_conflict(tmp_path):
    path = write(tmp_path, """\
      - repeat: 4
        start: -1h
        interval: 1m
        message: {chat: bob, read: true}  # <-
        variants:
          - {direction: incoming}
          - {direction: outgoing}
    """)
    assert_error_at_marker(path, "messages[1].message.read", "only incoming messages have a read state",
                           "in repeated message 2")


def test_quote_of_unknown_id(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: bob
        direction: outgoing
        sent: -1h
        quote: ghost  # <-
    """)
    assert_error_at_marker(path, "messages[1].quote", "quote of unknown message id 'ghost'")


def test_quote_from_other_chat(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: club
        direction: outgoing
        sent: -1h
        quote: m1  # <-
    """)
    assert_error_at_marker(path, "messages[1].quote", "is in chat 'bob', not 'club'")


def test_quote_of_generated_message(tmp_path):
    path = write(tmp_path, """\
      - repeat: 10
        start: -1h
        interval: 1m
        message: {id: "g{n}", chat: bob, direction: incoming}
      - id: reply
        chat: bob
        direction: outgoing
        sent: now
        quote: g10
    """)
    messages = list(resolve(load_scenario(path), NOW)["messages"])
    assert messages[-1]["quote"] == "g10"


def test_group_author_not_member(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: club
        direction: incoming
        author: dan  # <-
        sent: -1h
    """)
    assert_error_at_marker(path, "messages[1].author", "'dan' is not a member of chat 'club'")


def test_group_incoming_needs_author(tmp_path):
    path = write(tmp_path, """\
      - id: m2  # <-
        chat: club
        direction: incoming
        sent: -1h
    """)
    assert_error_at_marker(path, "messages[1]", "needs an author")


def test_reaction_author_unknown(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: bob
        direction: incoming
        sent: -1h
        reactions:
          - {emoji: "x", author: carol}  # <-
    """)
    assert_error_at_marker(path, "messages[1].reactions[0].author", "'carol' is not a member of chat 'bob'")


def test_read_on_outgoing_rejected(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: bob
        direction: outgoing
        sent: -1h
        read: true  # <-
    """)
    assert_error_at_marker(path, "messages[1].read", "only incoming messages")


def test_media_without_attachment(tmp_path):
    path = write(tmp_path, """\
      - id: m2  # <-
        chat: bob
        direction: incoming
        kind: media
        sent: -1h
    """)
    assert_error_at_marker(path, "messages[1]", "needs at least one attachment")


def test_expire_start_without_timer(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: bob
        direction: incoming
        sent: -1h
        expire_start: -1h  # <-
    """)
    assert_error_at_marker(path, "messages[1].expire_start", "needs a disappearing timer")


def test_attachment_age_and_uploaded_together(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: bob
        direction: incoming
        kind: media
        sent: -1h
        attachments:
          - content_type: image/png
            size: 10
            uploaded: -1d
            age: 2d  # <-
    """)
    assert_error_at_marker(path, "messages[1].attachments[0].age", "either age or uploaded")


def test_duplicate_yaml_key(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: bob
        direction: incoming
        sent: -1h
        sent: -2h  # <-
    """)
    assert_error_at_marker(path, "messages[1].sent", "appears twice")


def test_invalid_yaml_syntax(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: [bob  # <-
    """)
    message = error_of(path)
    assert "invalid YAML" in message
    assert message.startswith(f"{path}:")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n", encoding="utf-8")
    assert "empty" in error_of(path)


def test_missing_file(tmp_path):
    message = error_of(tmp_path / "absent.yaml")
    assert "not found" in message


def test_scenario_error_is_usage_error(tmp_path):
    with pytest.raises(UsageError):
        load_scenario(tmp_path / "absent.yaml")


def test_more_problems_are_counted(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: bob
        direction: sideways  # <-
        sent: never
    """)
    assert_error_at_marker(path, "(1 more problem after it)")


def test_step_with_two_actions(tmp_path):
    path = write(tmp_path, """\
    steps:
      - advance: 1d  # <-
        backup: true
    """)
    assert_error_at_marker(path, "steps[0]", "exactly one action")


def test_step_delete_unknown_and_twice(tmp_path):
    path = write(tmp_path, """\
    steps:
      - delete_messages: [ghost]  # <-
    """)
    assert_error_at_marker(path, "steps[0].delete_messages[0]", "cannot delete unknown message id 'ghost'")
    path = write(tmp_path, """\
    steps:
      - delete_messages: [m1]
      - delete_messages:
          - m1  # <-
    """, name="twice.yaml")
    assert_error_at_marker(path, "steps[1].delete_messages[0]", "already deleted")


def test_step_expect_deleted_present(tmp_path):
    path = write(tmp_path, """\
    steps:
      - delete_messages: [m1]
      - expect:
          present:
            - m1  # <-
    """)
    assert_error_at_marker(path, "steps[1].expect.present[0]", "was deleted")


def test_step_expect_message_added_later(tmp_path):
    path = write(tmp_path, """\
    steps:
      - expect:
          present:
            - later  # <-
      - add_messages:
          - {id: later, chat: bob, direction: incoming, sent: now}
    """)
    assert_error_at_marker(path, "steps[0].expect.present[0]", "unknown message id 'later'")


# resolve() ---------------------------------------------------------------------------------------
def test_resolve_absolute_times(tmp_path):
    path = write(tmp_path, """\
      - id: rel
        chat: bob
        direction: incoming
        sent: -23h59m
        received: -23h58m
        expires_in: 7d
        expire_start: now-1h
        edits: [one, {text: two, sent: -2d}, three]
        reactions:
          - {emoji: "x", author: self, sent: +1ms}
        attachments:
          - {content_type: image/png, size: 100, age: 45d1h}
          - {content_type: application/pdf, size: 100, uploaded: 2025-01-01T00:00:00+01:00}
          - {content_type: image/png, size: 100}
        kind: media
      - id: abs
        chat: club
        author: bob
        direction: incoming
        sent: 2025-02-28T12:00:00Z
      - id: now
        chat: bob
        direction: outgoing
        sent: now
    """)
    resolved = resolve(load_scenario(path), NOW)
    messages = {message["id"]: message for message in resolved["messages"]}
    assert resolved["now_ms"] == NOW
    assert messages["m1"]["sent_ms"] == NOW - DAY
    rel = messages["rel"]
    assert rel["sent_ms"] == NOW - 23 * HOUR - 59 * MINUTE
    assert rel["received_ms"] == NOW - 23 * HOUR - 58 * MINUTE
    assert rel["expires_in_ms"] == 7 * DAY
    assert rel["expire_start_ms"] == NOW - HOUR
    assert [edit["sent_ms"] for edit in rel["edits"]] == [rel["sent_ms"] - 3 * MINUTE, NOW - 2 * DAY, rel["sent_ms"] - MINUTE]
    assert rel["reactions"][0]["sent_ms"] == NOW + 1
    assert rel["attachments"][0]["uploaded_ms"] == NOW - 45 * DAY - HOUR
    assert rel["attachments"][1]["uploaded_ms"] == 1_735_686_000_000  # 2024-12-31T23:00:00Z
    assert rel["attachments"][2]["uploaded_ms"] == rel["sent_ms"]
    assert rel["attachments"][0]["thumbnail"] is True
    assert rel["attachments"][1]["thumbnail"] is False
    assert messages["abs"]["sent_ms"] == NOW - DAY
    assert messages["abs"]["author"] == "bob"
    assert messages["now"]["sent_ms"] == NOW
    assert messages["now"]["author"] == "self"
    assert messages["now"]["status"] == "sent"
    assert messages["now"]["read"] is None
    assert messages["m1"]["author"] == "bob"
    assert messages["m1"]["read"] is False


def test_resolve_is_json_serializable_per_message():
    resolved = resolve(load_scenario(SCENARIOS / "daily-life.yaml"), NOW)
    for message in resolved["messages"]:
        json.dumps(message)
    header = {key: value for key, value in resolved.items() if key not in ("messages", "steps")}
    json.dumps(header)


def test_resolve_steps_move_clock(tmp_path):
    path = write(tmp_path, """\
    steps:
      - advance: 1d
      - add_messages:
          - {id: d1, chat: bob, direction: incoming, sent: -1h}
      - set: 2025-06-01T00:00:00Z
      - add_messages:
          - {id: d2, chat: bob, direction: incoming, sent: now}
      - backup: true
        note: after the jump
    """)
    steps = resolve(load_scenario(path), NOW)["steps"]
    assert steps[0] == {"action": "advance", "delta_ms": DAY, "clock_ms": NOW + DAY}
    assert [message["sent_ms"] for message in steps[1]["messages"]] == [NOW + DAY - HOUR]
    june = parse_absolute_time("2025-06-01T00:00:00Z")
    assert steps[2]["clock_ms"] == june
    assert [message["sent_ms"] for message in steps[3]["messages"]] == [june]
    assert steps[4] == {"action": "backup", "clock_ms": june, "note": "after the jump"}


def test_resolve_uses_scenario_now_by_default():
    resolved = resolve(load_scenario(SCENARIOS / "daily-replacement.yaml"))
    assert resolved["now_ms"] == parse_absolute_time("2025-03-01T12:00:00Z")


def test_chat_timer_inherited_but_not_by_updates(tmp_path):
    path = write(tmp_path, """\
      - {id: upd, chat: bob, kind: update, update: {type: timer_change, timer: 4w}, sent: -2d}
      - {id: off, chat: bob, direction: outgoing, sent: -1d, expires_in: "off"}
    """)
    path.write_text(path.read_text().replace("  - with: bob\n", "  - with: bob\n    expires_in: 4w\n"))
    messages = {m["id"]: m for m in resolve(load_scenario(path), NOW)["messages"]}
    assert messages["m1"]["expires_in_ms"] == 28 * DAY
    assert messages["upd"]["expires_in_ms"] is None
    assert messages["upd"]["update"] == {"type": "timer_change", "timer_ms": 28 * DAY}
    assert messages["upd"]["direction"] == "update"
    assert messages["off"]["expires_in_ms"] is None


def test_derived_aci_is_stable_and_distinct():
    resolved = resolve(load_scenario(SCENARIOS / "daily-life.yaml"), NOW)
    acis = [contact["aci"] for contact in resolved["contacts"]] + [resolved["self"]["aci"]]
    assert len(set(acis)) == len(acis)
    assert resolved["contacts"][0]["aci"] == derive_aci("Bob Jones")
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", acis[0])


# Attachment bytes --------------------------------------------------------------------------------
def test_attachment_bytes_deterministic_with_embed():
    attachment = {"size": 200_000, "seed": "s1", "embed": "hello-canary", "thumbnail": True}
    data = attachment_bytes(attachment)
    assert len(data) == 200_000
    assert data == attachment_bytes(dict(attachment))
    assert data.find(b"hello-canary") == 64
    assert b"".join(iter_attachment_bytes(attachment, chunk_size=70)) == data
    assert attachment_bytes({**attachment, "seed": "s2"}) != data
    assert len(thumbnail_bytes(attachment)) == 2048


def test_attachment_embed_in_small_file():
    attachment = {"size": 20, "seed": "s", "embed": "0123456789", "thumbnail": False}
    data = attachment_bytes(attachment)
    assert data[10:] == b"0123456789"
    assert thumbnail_bytes(attachment) is None


def test_embed_longer_than_file_rejected(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: bob
        direction: incoming
        kind: media
        sent: -1h
        attachments:
          - content_type: image/png
            size: 4
            embed: too long for four bytes  # <-
    """)
    assert_error_at_marker(path, "messages[1].attachments[0].embed", "longer than size 4")


# Durations and times -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "ms"),
    [("24h", DAY), ("86400000ms", DAY), (86400000, DAY), ("24h-1ms", DAY - 1), ("24h+1ms", DAY + 1),
     ("1w", 7 * DAY), ("1d12h", 36 * HOUR), ("45d1h", 45 * DAY + HOUR), ("1m30s", 90_000), ("5ms", 5)],
)
def test_parse_duration(text, ms):
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["25x", "24", "h", "-1d", "1.5h", "", True])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_parse_time_forms():
    assert parse_time("now", NOW) == NOW
    assert parse_time("-3d", NOW) == NOW - 3 * DAY
    assert parse_time("-23h59m", NOW) == NOW - 23 * HOUR - 59 * MINUTE
    assert parse_time("now-6d+1ms", NOW) == NOW - 6 * DAY + 1
    assert parse_time("+1h", NOW) == NOW + HOUR
    assert parse_time("2025-03-01T12:00:00Z", 0) == NOW
    assert parse_time("2025-03-01T13:00:00+01:00", 0) == NOW
    assert parse_time("2025-03-01T12:00:00.250Z", 0) == NOW + 250


def test_format_duration():
    assert format_duration(DAY + HOUR + 1) == "1d1h1ms"
    assert format_duration(-DAY) == "-1d"


def test_schema_patterns_match_timespec():
    definitions = scenario_schema()["$defs"]
    assert definitions["time"]["pattern"] == TIME_PATTERN
    assert definitions["absoluteTime"]["pattern"] == ABSOLUTE_TIME_PATTERN
    assert definitions["duration"]["anyOf"][1]["pattern"] == DURATION_PATTERN
    assert definitions["timer"]["anyOf"][2]["pattern"] == DURATION_PATTERN


def test_documented_examples_validate(tmp_path):
    text = (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    base = blocks[0]
    generator = next(block for block in blocks if "repeat:" in block)
    steps = next(block for block in blocks if block.startswith("steps:"))
    path = tmp_path / "doc.yaml"
    path.write_text(base + generator.split("\n", 1)[1] + steps, encoding="utf-8")
    resolved = resolve(load_scenario(path), NOW)
    assert len(resolved["messages"]) == 100_003
    assert resolved["steps"][-1]["present"] == ["day2"]


def test_unknown_field_suggests_close_name(tmp_path):
    path = write(tmp_path, """\
      - id: m2
        chat: bob
        direction: incoming
        sent: -1h
        expire_in: 1d  # <-
    """)
    assert_error_at_marker(path, "messages[1].expire_in", "did you mean 'expires_in'?")


def test_mutated_files_fail_cleanly(tmp_path):
    """Random edits of a real scenario either load or raise ScenarioError, never another error."""
    rng = random.Random(0)
    lines = (SCENARIOS / "daily-life.yaml").read_text(encoding="utf-8").splitlines()
    values = ["", "null", "[]", "{}", "1", "-1", "true", "x", "2025-13-01T00:00:00Z", "[1, 2]", "- x", "off", "~"]
    path = tmp_path / "mutated.yaml"
    outcomes = {"loaded": 0, "rejected": 0}
    for _ in range(150):
        mutated = list(lines)
        index = rng.randrange(len(mutated))
        operation = rng.randrange(3)
        if operation == 0:
            del mutated[index]
        elif operation == 1 and ":" in mutated[index]:
            mutated[index] = mutated[index].partition(":")[0] + ": " + rng.choice(values)
        else:
            mutated.insert(index, mutated[rng.randrange(len(mutated))])
        path.write_text("\n".join(mutated), encoding="utf-8")
        try:
            resolved = resolve(load_scenario(path), NOW)
            list(resolved["messages"])
            outcomes["loaded"] += 1
        except ScenarioError as error:
            assert str(error).startswith(str(path)), error
            outcomes["rejected"] += 1
    assert outcomes["rejected"] > 25
    assert outcomes["loaded"] > 5
