"""Turning validated scenario messages into the absolute, defaulted form targets load.

Every time becomes epoch milliseconds, every default is filled in (docs/scenarios.md lists
them), and every message has the same keys whatever its kind, so a target never has to
re-read the scenario rules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from harness.scenario_directory import SELF, Directory, message_timer, parse_timer
from harness.scenario_expand import entry_size, is_generator, iter_entries
from harness.timespec import parse_duration, parse_time

# Earlier revisions of an edited message default to one minute apart, ending one minute
# before the final text.
EDIT_SPACING_MS = 60_000


@dataclasses.dataclass(frozen=True)
class ResolveContext:
    scenario_name: str
    directory: Directory


def _direction(message: dict[str, Any]) -> str:
    return "update" if message.get("kind") == "update" else message["direction"]


def _author(message: dict[str, Any], context: ResolveContext) -> str:
    if "author" in message:
        return message["author"]
    if message.get("direction") == "incoming":
        chat = context.directory.chats[message["chat"]]
        return chat.with_id  # a 1:1 chat; the checks require an author in groups
    return SELF


def _attachment(
    attachment: dict[str, Any], index: int, message_id: str, sent_ms: int, now_ms: int, context: ResolveContext
) -> dict[str, Any]:
    if "uploaded" in attachment:
        uploaded_ms = parse_time(attachment["uploaded"], now_ms)
    elif "age" in attachment:
        uploaded_ms = now_ms - parse_duration(attachment["age"])
    else:
        uploaded_ms = sent_ms
    content_type = attachment["content_type"]
    return {
        "file_name": attachment.get("file_name"),
        "content_type": content_type,
        "size": attachment["size"],
        "caption": attachment.get("caption"),
        "uploaded_ms": uploaded_ms,
        "seed": str(attachment.get("seed", f"{context.scenario_name}:{message_id}:{index}")),
        "thumbnail": attachment.get("thumbnail", content_type.startswith(("image/", "video/"))),
        "embed": attachment.get("embed"),
        "expect": dict(attachment.get("expect", {})),
    }


def _edits(message: dict[str, Any], sent_ms: int, now_ms: int) -> list[dict[str, Any]]:
    edits = message.get("edits", [])
    resolved = []
    for position, edit in enumerate(edits):
        default_ms = sent_ms - (len(edits) - position) * EDIT_SPACING_MS
        if isinstance(edit, str):
            resolved.append({"text": edit, "sent_ms": default_ms})
        else:
            sent = edit.get("sent")
            resolved.append({"text": edit["text"], "sent_ms": parse_time(sent, now_ms) if sent else default_ms})
    return resolved


def _update(update: dict[str, Any] | None) -> dict[str, Any] | None:
    if update is None:
        return None
    resolved: dict[str, Any] = {"type": update["type"]}
    if "timer" in update:
        resolved["timer_ms"] = parse_timer(update["timer"])
    for field in ("title", "member"):
        if field in update:
            resolved[field] = update[field]
    return resolved


def resolve_message(
    message: dict[str, Any], message_id: str, sent_ms: int, now_ms: int, context: ResolveContext
) -> dict[str, Any]:
    """Return one message in resolved form; ``sent_ms`` is already absolute."""
    chat = context.directory.chats[message["chat"]]
    direction = _direction(message)
    timer_ms = message_timer(message, chat.timer_ms)
    expire_start = message.get("expire_start", "unstarted")
    received = message.get("received")
    return {
        "id": message_id,
        "chat": chat.id,
        "direction": direction,
        "author": _author(message, context),
        "kind": message.get("kind", "text"),
        "text": message.get("text"),
        "read": message.get("read", False) if direction == "incoming" else None,
        "status": message.get("status", "sent") if direction == "outgoing" else None,
        "sent_ms": sent_ms,
        "received_ms": parse_time(received, now_ms) if received else sent_ms,
        "expires_in_ms": timer_ms,
        "expire_start_ms": None if expire_start == "unstarted" or timer_ms is None else parse_time(expire_start, now_ms),
        "attachments": [
            _attachment(attachment, index, message_id, sent_ms, now_ms, context)
            for index, attachment in enumerate(message.get("attachments", []))
        ],
        "reactions": [
            {
                "emoji": reaction["emoji"],
                "author": reaction["author"],
                "sent_ms": parse_time(reaction["sent"], now_ms) if "sent" in reaction else sent_ms,
            }
            for reaction in message.get("reactions", [])
        ],
        "quote": message.get("quote"),
        "deleted": message.get("deleted", False),
        "edits": _edits(message, sent_ms, now_ms),
        "update": _update(message.get("update")),
        "sticker": dict(message["sticker"]) if "sticker" in message else None,
        "expect": dict(message.get("expect", {})),
    }


class MessageStream:
    """The resolved messages of one message list, produced on demand.

    Iterating twice expands twice. Nothing is kept between iterations, so a list of 100,000
    generated messages costs memory only when a caller keeps what it receives.
    ``len()`` is computed from the entries without expanding them.
    """

    def __init__(
        self, entries: list[dict[str, Any]], now_ms: int, context: ResolveContext, prefix: str = "_"
    ) -> None:
        self._entries = entries
        self._now_ms = now_ms
        self._context = context
        self._prefix = prefix

    def __len__(self) -> int:
        return sum(entry_size(entry) for entry in self._entries)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        starts: dict[int, tuple[int, int]] = {}
        for entry_index, k, message_id, message in iter_entries(self._entries, self._prefix):
            if k is None:
                sent_ms = parse_time(message["sent"], self._now_ms)
            else:
                if entry_index not in starts:
                    entry = self._entries[entry_index]
                    starts[entry_index] = (parse_time(entry["start"], self._now_ms), parse_duration(entry["interval"]))
                start_ms, interval_ms = starts[entry_index]
                sent_ms = start_ms + k * interval_ms
            yield resolve_message(message, message_id, sent_ms, self._now_ms, self._context)

    def __repr__(self) -> str:
        generators = sum(1 for entry in self._entries if is_generator(entry))
        return f"MessageStream({len(self)} messages, {generators} generator(s))"
