"""Load a resolved scenario (see the harness's ``docs/scenarios.md``) into the message store.

The target adapter sends the scenario in two parts: the people and chats first, then the
messages in batches, so a scenario of 100,000 messages never travels as one request.
Scenario ids are kept in ``scenario_id`` columns, so later steps (quotes, deletions) can
name messages by them.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from reference_app.conversations import ConversationError, Conversations, NewAttachment, NewMessage, new_attachment
from reference_app.media import AttachmentFiles, generate_content
from reference_app.thumbnails import has_thumbnail, thumbnail_for_seed

log = logging.getLogger(__name__)

SELF_ID = "self"
MESSAGE_KINDS = ("text", "media", "view_once", "sticker", "update")
DIRECTIONS = ("incoming", "outgoing", "update")


class ScenarioPayloadError(ValueError):
    """A scenario request is not in the resolved scenario form; the message names the field."""


def _require(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ScenarioPayloadError(f"{where}: missing field {key!r}")
    value = data[key]
    if not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ScenarioPayloadError(f"{where}: field {key!r} must be {expected}, got {type(value).__name__}")
    return value


def load_people_and_chats(db: sqlite3.Connection, conversations: Conversations, scenario: dict[str, Any]) -> dict[str, int]:
    """Create the contacts, groups and chats of a scenario; return counts."""
    if not isinstance(scenario, dict):
        raise ScenarioPayloadError("scenario: expected a JSON object")
    owner = _require(scenario, "self", dict, "scenario")
    conversations.ensure_account(db, _require(owner, "name", str, "scenario.self"))
    contacts = _require(scenario, "contacts", list, "scenario")
    groups = _require(scenario, "groups", list, "scenario")
    chats = _require(scenario, "chats", list, "scenario")
    for index, contact in enumerate(contacts):
        where = f"scenario.contacts[{index}]"
        if not isinstance(contact, dict):
            raise ScenarioPayloadError(f"{where}: expected an object")
        conversations.add_contact(
            db,
            _require(contact, "name", str, where),
            _require(contact, "aci", str, where),
            contact.get("e164"),
            _require(contact, "id", str, where),
        )
    for index, group in enumerate(groups):
        where = f"scenario.groups[{index}]"
        members = [_recipient_id(db, member, f"{where}.members") for member in _require(group, "members", list, where)]
        conversations.add_group(db, _require(group, "title", str, where), members, _require(group, "id", str, where))
    for index, chat in enumerate(chats):
        where = f"scenario.chats[{index}]"
        recipient = _recipient_id(db, _require(chat, "with", str, where), where)
        timer = chat.get("expires_in_ms")
        conversations.add_chat(db, recipient, timer if isinstance(timer, int) else None, _require(chat, "id", str, where))
    return {"contacts": len(contacts), "groups": len(groups), "chats": len(chats)}


def _recipient_id(db: sqlite3.Connection, scenario_id: str, where: str) -> int:
    if scenario_id == SELF_ID:
        row = db.execute("SELECT id FROM recipients WHERE kind = 'self'").fetchone()
    else:
        row = db.execute("SELECT id FROM recipients WHERE scenario_id = ?", (scenario_id,)).fetchone()
    if row is None:
        raise ScenarioPayloadError(f"{where}: unknown contact or group {scenario_id!r}")
    return int(row["id"])


def _chat_id(db: sqlite3.Connection, scenario_id: str, where: str) -> int:
    row = db.execute("SELECT id FROM chats WHERE scenario_id = ?", (scenario_id,)).fetchone()
    if row is None:
        raise ScenarioPayloadError(f"{where}: unknown chat {scenario_id!r}; load the scenario's chats first")
    return int(row["id"])


def build_message(db: sqlite3.Connection, files: AttachmentFiles, message: dict[str, Any], where: str) -> NewMessage:
    """Turn one resolved scenario message into a NewMessage (attachment files are written)."""
    if not isinstance(message, dict):
        raise ScenarioPayloadError(f"{where}: expected an object")
    direction = _require(message, "direction", str, where)
    if direction not in DIRECTIONS:
        raise ScenarioPayloadError(f"{where}: direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    kind = message.get("kind") or "text"
    if kind not in MESSAGE_KINDS:
        raise ScenarioPayloadError(f"{where}: kind must be one of {', '.join(MESSAGE_KINDS)}, got {kind!r}")
    sent_ms = _require(message, "sent_ms", int, where)
    attachments = _attachments(files, message, sent_ms, where)

    quote = message.get("quote")
    quote_row = None
    if quote:
        quote_row = db.execute("SELECT id FROM chat_items WHERE scenario_id = ?", (quote,)).fetchone()
        if quote_row is None:
            raise ScenarioPayloadError(f"{where}: quoted message {quote!r} is not loaded")
    return NewMessage(
        chat_id=_chat_id(db, _require(message, "chat", str, where), where),
        author_id=_recipient_id(db, message.get("author") or SELF_ID, f"{where}.author"),
        direction=direction,
        sent_ms=sent_ms,
        kind=kind,
        text=message.get("text"),
        received_ms=message.get("received_ms"),
        read=bool(message.get("read")),
        status=message.get("status") or "sent",
        expires_in_ms=message.get("expires_in_ms"),
        expire_start_ms=message.get("expire_start_ms"),
        attachments=attachments,
        reactions=[
            (reaction["emoji"], _recipient_id(db, reaction["author"], f"{where}.reactions"), reaction.get("sent_ms", sent_ms))
            for reaction in message.get("reactions") or []
        ],
        quote_item_id=None if quote_row is None else int(quote_row["id"]),
        deleted=bool(message.get("deleted")),
        edits=[(edit["text"], edit["sent_ms"]) for edit in message.get("edits") or []],
        update=message.get("update"),
        sticker=message.get("sticker"),
        scenario_id=message.get("id"),
    )


def _attachments(files: AttachmentFiles, message: dict[str, Any], sent_ms: int, where: str) -> list[NewAttachment]:
    """Generate the message's attachment bytes and thumbnails and write them to files."""
    attachments = []
    for index, attachment in enumerate(message.get("attachments") or []):
        item_where = f"{where}.attachments[{index}]"
        size = _require(attachment, "size", int, item_where)
        content_type = _require(attachment, "content_type", str, item_where)
        seed = str(attachment.get("seed") or f"{message.get('id')}:{index}")
        data = generate_content(seed, size, attachment.get("embed"))
        attachments.append(
            new_attachment(
                files,
                data,
                content_type,
                thumbnail=_thumbnail(attachment, seed, content_type, item_where),
                file_name=attachment.get("file_name"),
                caption=attachment.get("caption"),
                uploaded_ms=attachment.get("uploaded_ms", sent_ms),
            )
        )
    return attachments


def _thumbnail(attachment: dict[str, Any], seed: str, content_type: str, where: str) -> bytes | None:
    """Return the attachment's thumbnail: the scenario's ``thumbnail`` flag decides, else its type."""
    flag = attachment.get("thumbnail")
    if flag is None:
        flag = has_thumbnail(content_type)
    elif not isinstance(flag, bool):
        raise ScenarioPayloadError(f"{where}: field 'thumbnail' must be bool, got {type(flag).__name__}")
    return thumbnail_for_seed(seed) if flag else None


def load_messages(
    db: sqlite3.Connection, conversations: Conversations, files: AttachmentFiles, messages: list[Any], start_index: int = 0
) -> int:
    """Add a batch of resolved scenario messages; return how many were added."""
    if not isinstance(messages, list):
        raise ScenarioPayloadError("messages: expected a JSON array")
    for offset, message in enumerate(messages):
        where = f"messages[{start_index + offset}]"
        try:
            conversations.add_message(db, build_message(db, files, message, where))
        except ConversationError as error:
            raise ScenarioPayloadError(f"{where}: {error}") from None
    return len(messages)
