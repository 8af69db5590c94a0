"""The app's screens: the chat list and the messages of each chat.

These are the values the control API returns for the harness's ``VisibleMessage``; they come
from the message store only, as a phone's screens do.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from harness import schema

UPDATE_TEXTS = {
    "expiration_timer_change": "Disappearing messages timer changed",
    "group_change": "Group updated",
    "simple_update": "Chat event",
}


def chat_titles(db: sqlite3.Connection) -> dict[int, str]:
    rows = db.execute("SELECT chats.id, recipients.kind, recipients.name, recipients.id AS rid FROM chats JOIN recipients ON recipients.id = chats.recipient_id")
    titles: dict[int, str] = {}
    for row in rows:
        title = "Note to Self" if row["kind"] == "self" else (row["name"] or f"Chat {row['id']}")
        titles[int(row["id"])] = title
    return titles


def author_names(db: sqlite3.Connection) -> dict[int, str]:
    account = db.execute("SELECT value FROM meta WHERE key = 'account'").fetchone()
    own_name = schema.AccountData.FromString(account["value"]).given_name if account else "You"
    names: dict[int, str] = {}
    for row in db.execute("SELECT id, kind, name FROM recipients"):
        names[int(row["id"])] = (own_name or "You") if row["kind"] == "self" else (row["name"] or f"Recipient {row['id']}")
    return names


def chat_list(db: sqlite3.Connection) -> list[dict[str, Any]]:
    titles = chat_titles(db)
    result = []
    for row in db.execute(
        "SELECT chats.id, chats.expiration_timer_ms, recipients.kind, "
        "(SELECT COUNT(*) FROM chat_items WHERE chat_id = chats.id AND direction = 'incoming' AND read = 0 AND deleted_local = 0) AS unread, "
        "(SELECT MAX(date_sent) FROM chat_items WHERE chat_id = chats.id AND deleted_local = 0) AS last_ms "
        "FROM chats JOIN recipients ON recipients.id = chats.recipient_id ORDER BY chats.seq, chats.id"
    ):
        result.append(
            {
                "title": titles[int(row["id"])],
                "kind": row["kind"],
                "expiration_timer_ms": row["expiration_timer_ms"],
                "unread": int(row["unread"]),
                "last_message_ms": row["last_ms"],
            }
        )
    return result


def _attachments(db: sqlite3.Connection, item_id: int, files: Any) -> list[dict[str, Any]]:
    result = []
    for row in db.execute("SELECT * FROM attachments WHERE chat_item_id = ? ORDER BY role, position", (item_id,)):
        available = files.exists(row["local_file"])
        result.append(
            {
                "file_name": row["file_name"],
                "content_type": row["content_type"],
                "size": int(row["size"] or 0),
                "available": available,
                "sha256": row["plaintext_hash"].hex() if available and row["plaintext_hash"] else None,
                "thumbnail": files.exists(row["thumbnail_file"]),
            }
        )
    return result


def messages(db: sqlite3.Connection, files: Any, chat_id: int | None = None) -> list[dict[str, Any]]:
    """Return every message (of one chat, or of all chats) in display order."""
    titles = chat_titles(db)
    names = author_names(db)
    query = "SELECT * FROM chat_items WHERE deleted_local = 0 AND story_type = 0"
    parameters: tuple[Any, ...] = ()
    if chat_id is not None:
        query += " AND chat_id = ?"
        parameters = (chat_id,)
    result = []
    for row in db.execute(query + " ORDER BY chat_id, id", parameters).fetchall():
        deleted = bool(row["remote_deleted"]) or row["kind"] == "remote_deleted"
        direction = "update" if row["direction"] == "directionless" else row["direction"]
        text = None if deleted else row["text"]
        if row["kind"] == "update" and not deleted:
            text = UPDATE_TEXTS.get(row["update_kind"] or "", "Chat event")
        reactions = [r["emoji"] for r in db.execute("SELECT emoji FROM reactions WHERE chat_item_id = ? ORDER BY position", (row["id"],))]
        result.append(
            {
                "chat": titles.get(int(row["chat_id"]), f"Chat {row['chat_id']}"),
                "author": names.get(int(row["author_id"]), f"Recipient {row['author_id']}"),
                "direction": direction,
                "sent_at_ms": int(row["date_sent"]),
                "text": text,
                "kind": row["kind"],
                "view_once": row["kind"] == "view_once",
                "expires_in_ms": row["expires_in_ms"] or None,
                "expire_start_ms": row["expire_start_ms"] if row["expires_in_ms"] else None,
                "attachments": [] if deleted else _attachments(db, int(row["id"]), files),
                "reactions": [] if deleted else reactions,
                "quote_text": None if deleted else row["quote_text"],
                "deleted": deleted,
                "read": bool(row["read"]) if direction == "incoming" else None,
            }
        )
    return result
