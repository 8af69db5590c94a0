"""Checks the schema cannot express: references between messages, chats and people.

Every check raises ScenarioError through the source map, so the message names the line of the
offending field. Message ids live in one namespace across the main list and all steps. A
reference (quote, delete, expect) may name only messages that exist at that point.
"""

from __future__ import annotations

from typing import Any

from harness.errors import ScenarioError
from harness.scenario_directory import SELF, ChatInfo, Directory, message_timer
from harness.scenario_expand import cycle_period, is_generator, iter_ids, template_variant
from harness.scenario_schema import check_value
from harness.scenario_source import JsonPath, SourceMap
from harness.timespec import parse_absolute_time, parse_duration


class _Checker:
    def __init__(self, directory: Directory, source: SourceMap) -> None:
        self.directory = directory
        self.source = source
        self.chat_of: dict[str, str] = {}  # message id -> chat id, for every known message
        self.deleted: set[str] = set()

    def fail(self, path: JsonPath, problem: str) -> ScenarioError:
        return self.source.error(path, problem)

    # People ------------------------------------------------------------------------------
    def _check_participant(self, chat: ChatInfo, person: str, path: JsonPath, role: str) -> None:
        if person == SELF or person in chat.members:
            return
        if person in self.directory.contacts:
            raise self.fail(path, f"{role} {person!r} is not a member of chat {chat.id!r}")
        raise self.fail(path, f"unknown {role} {person!r}; use 'self' or a contact id")

    def _check_author(self, message: dict[str, Any], chat: ChatInfo, path: JsonPath) -> None:
        direction = message.get("direction")
        author = message.get("author")
        kind = message.get("kind", "text")
        if kind == "update":
            if direction is not None:
                raise self.fail(path + ("direction",), "an update has no direction; remove it (set author instead)")
        elif direction is None:
            raise self.fail(path, "missing required field 'direction' (incoming or outgoing)")
        if direction == "outgoing" and author not in (None, SELF):
            raise self.fail(path + ("author",), f"an outgoing message is written by 'self', not {author!r}")
        if direction == "incoming" and author == SELF:
            raise self.fail(path + ("author",), "an incoming message cannot be written by 'self'")
        if direction == "incoming" and author is None and chat.kind == "group":
            raise self.fail(path, f"an incoming message in group chat {chat.id!r} needs an author")
        if author is not None:
            self._check_participant(chat, author, path + ("author",), "author")
        if "read" in message and direction != "incoming":
            raise self.fail(path + ("read",), "only incoming messages have a read state; use status for outgoing")
        if "status" in message and direction != "outgoing":
            raise self.fail(path + ("status",), "only outgoing messages have a send status")

    # Content -----------------------------------------------------------------------------
    def _check_kind(self, message: dict[str, Any], chat: ChatInfo, path: JsonPath) -> None:
        kind = message.get("kind", "text")
        attachments = message.get("attachments", [])
        if kind == "media" and not attachments:
            raise self.fail(path, "a media message needs at least one attachment")
        if kind == "view_once" and len(attachments) != 1:
            raise self.fail(path, "a view-once message has exactly one attachment")
        if kind in ("text", "sticker", "update") and attachments:
            raise self.fail(path + ("attachments",), f"a {kind} message has no attachments; use kind: media")
        if ("update" in message) != (kind == "update"):
            raise self.fail(path + ("kind",), "kind: update and the update field go together")
        if "sticker" in message and kind != "sticker":
            raise self.fail(path + ("sticker",), "the sticker field needs kind: sticker")
        if kind == "update":
            self._check_update(message["update"], chat, path + ("update",))

    def _check_update(self, update: dict[str, Any], chat: ChatInfo, path: JsonPath) -> None:
        needs = {"timer_change": "timer", "title_change": "title", "member_added": "member", "member_left": "member"}
        field = needs[update["type"]]
        if field not in update:
            raise self.fail(path, f"a {update['type']} update needs the field {field!r}")
        if update["type"] != "timer_change" and chat.kind != "group":
            raise self.fail(path + ("type",), f"a {update['type']} update belongs in a group chat")
        if field == "member" and update["member"] not in chat.members:
            raise self.fail(path + ("member",), f"{update['member']!r} is not a member of group chat {chat.id!r}")

    def _check_timer(self, message: dict[str, Any], chat: ChatInfo, path: JsonPath) -> None:
        if "expires_in" in message and message["expires_in"] != "off":
            if parse_duration(message["expires_in"]) < 0:
                raise self.fail(path + ("expires_in",), f"{message['expires_in']!r} is negative")
        timer = message_timer(message, chat.timer_ms)
        if message.get("expire_start", "unstarted") != "unstarted" and timer is None:
            raise self.fail(path + ("expire_start",), "expire_start needs a disappearing timer (expires_in)")

    def _check_attachments(self, message: dict[str, Any], path: JsonPath) -> None:
        for index, attachment in enumerate(message.get("attachments", [])):
            where = path + ("attachments", index)
            if "age" in attachment and "uploaded" in attachment:
                raise self.fail(where + ("age",), "give either age or uploaded, not both")
            embed = attachment.get("embed")
            if embed is not None and len(embed.encode("utf-8")) > attachment["size"]:
                raise self.fail(where + ("embed",), f"the embedded text is longer than size {attachment['size']}")

    def _check_edits_and_times(self, message: dict[str, Any], path: JsonPath) -> None:
        for field in ("sent", "received"):
            self._check_time(message.get(field), path + (field,))
        self._check_time(message.get("expire_start"), path + ("expire_start",))
        for index, edit in enumerate(message.get("edits", [])):
            if isinstance(edit, dict):
                self._check_time(edit.get("sent"), path + ("edits", index, "sent"))
        for index, attachment in enumerate(message.get("attachments", [])):
            self._check_time(attachment.get("uploaded"), path + ("attachments", index, "uploaded"))

    def _check_time(self, value: str | None, path: JsonPath) -> None:
        if value is None or value == "unstarted" or value == "now" or value[:1] in "+-" or value.startswith("now"):
            return
        try:
            parse_absolute_time(value)
        except ValueError as error:
            raise self.fail(path, str(error)) from None

    def check_message(self, message: dict[str, Any], path: JsonPath) -> None:
        chat = self.directory.chats.get(message["chat"])
        if chat is None:
            raise self.fail(path + ("chat",), f"unknown chat {message['chat']!r}; list it under chats")
        self._check_author(message, chat, path)
        self._check_kind(message, chat, path)
        self._check_timer(message, chat, path)
        self._check_attachments(message, path)
        self._check_edits_and_times(message, path)
        for index, reaction in enumerate(message.get("reactions", [])):
            where = path + ("reactions", index)
            self._check_participant(chat, reaction["author"], where + ("author",), "reaction author")
            self._check_time(reaction.get("sent"), where + ("sent",))

    # Generators --------------------------------------------------------------------------
    def check_generator(self, generator: dict[str, Any], path: JsonPath) -> None:
        template = generator["message"]
        for field in ("sent", "received"):
            if field in template:
                raise self.fail(
                    path + ("message", field),
                    f"a repeated message takes its times from start and interval; remove {field}",
                )
        template_id = template.get("id", "")
        if generator["repeat"] > 1 and "id" in template and "{n}" not in template_id and "{i}" not in template_id:
            raise self.fail(path + ("message", "id"), "a repeated id needs {n} or {i} so that each message has its own id")
        self._check_time(generator["start"], path + ("start",))
        for field, values in generator.get("cycle", {}).items():
            for index, value in enumerate(values):
                check_value(f"message/properties/{field}", value, path + ("cycle", field, index), self.source)
        for index, variant in enumerate(generator.get("variants", [])):
            for field in ("id", "chat", "quote", "sent", "received"):
                if field in variant:
                    raise self.fail(path + ("variants", index, field), f"{field} cannot vary between repeated messages; set it in message")
        for k in range(cycle_period(generator)):
            variant = template_variant(generator, k)
            try:
                self.check_message(variant, path + ("message",))
            except ScenarioError as error:
                if not generator.get("cycle") and not generator.get("variants"):
                    raise
                raise ScenarioError(f"{error} (in repeated message {k + 1}, with its cycle values and variant)") from None

    # References --------------------------------------------------------------------------
    def register_ids(self, entries: list[dict[str, Any]], path: JsonPath, prefix: str) -> None:
        for entry_index, message_id, chat_id in iter_ids(entries, prefix):
            if "{" in message_id or "}" in message_id:
                raise self.fail(path + (entry_index, "id"), f"id {message_id!r} has braces; only repeated ids use {{n}}")
            if message_id in self.chat_of:
                where = path + (entry_index, "message", "id") if is_generator(entries[entry_index]) else path + (entry_index, "id")
                raise self.fail(where, f"duplicate message id {message_id!r}")
            self.chat_of[message_id] = chat_id

    def check_quotes(self, entries: list[dict[str, Any]], path: JsonPath) -> None:
        for entry_index, entry in enumerate(entries):
            message = entry["message"] if is_generator(entry) else entry
            where = path + (entry_index,) + (("message",) if is_generator(entry) else ())
            quoted = message.get("quote")
            if quoted is None:
                continue
            if quoted not in self.chat_of:
                raise self.fail(where + ("quote",), f"quote of unknown message id {quoted!r}")
            if self.chat_of[quoted] != message["chat"]:
                raise self.fail(where + ("quote",), f"message {quoted!r} is in chat {self.chat_of[quoted]!r}, not {message['chat']!r}")

    def check_list(self, entries: list[dict[str, Any]], path: JsonPath, prefix: str) -> None:
        for entry_index, entry in enumerate(entries):
            if is_generator(entry):
                self.check_generator(entry, path + (entry_index,))
            else:
                self.check_message(entry, path + (entry_index,))
        self.register_ids(entries, path, prefix)
        self.check_quotes(entries, path)

    def check_known(self, message_id: str, path: JsonPath, action: str) -> None:
        if message_id not in self.chat_of:
            raise self.fail(path, f"cannot {action} unknown message id {message_id!r}")


def _check_step(checker: _Checker, step: dict[str, Any], index: int) -> None:
    path: JsonPath = ("steps", index)
    actions = [name for name in step if name != "note"]
    if len(actions) != 1:
        listed = ", ".join(actions) or "none"
        raise checker.fail(path, f"a step has exactly one action (advance, set, backup, add_messages, "
                                 f"delete_messages or expect); found: {listed}")
    if "set" in step:
        checker._check_time(step["set"], path + ("set",))
    if "add_messages" in step:
        checker.check_list(step["add_messages"], path + ("add_messages",), f"_step{index}-")
    for position, message_id in enumerate(step.get("delete_messages", [])):
        where = path + ("delete_messages", position)
        checker.check_known(message_id, where, "delete")
        if message_id in checker.deleted:
            raise checker.fail(where, f"message {message_id!r} is already deleted by an earlier step")
        checker.deleted.add(message_id)
    for field in ("present", "absent"):
        for position, message_id in enumerate(step.get("expect", {}).get(field, [])):
            where = path + ("expect", field, position)
            checker.check_known(message_id, where, "expect")
            if field == "present" and message_id in checker.deleted:
                raise checker.fail(where, f"message {message_id!r} was deleted by an earlier step; it cannot be present")


def check_references(document: dict[str, Any], directory: Directory, source: SourceMap) -> None:
    """Check messages and steps against the directory; raise ScenarioError on the first problem."""
    checker = _Checker(directory, source)
    checker.check_list(document["messages"], ("messages",), "_")
    for index, step in enumerate(document.get("steps", [])):
        _check_step(checker, step, index)
