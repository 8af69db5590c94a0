"""The local message store: one SQLite file (``messages.db``) in the data directory.

What the backup rules need is modelled in columns (direction, read state, timers, text,
attachments, reactions, deletion). Everything else a frame carries is kept as its serialized
protobuf (``raw``), so an archive restored from another client exports again without loss;
the exporter starts from ``raw`` and writes the modelled columns over it.

Recipient and chat ids keep the file-local ids of the archive they were restored from, so the
references inside ``raw`` (send statuses, poll votes, chat folders, ...) stay valid. Rows the
app creates itself get the next free id.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value BLOB
);
CREATE TABLE IF NOT EXISTS recipients (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,            -- contact, group, self, release_notes, distribution_list, call_link
    name TEXT,                     -- the title a chat list shows
    aci BLOB,
    e164 INTEGER,
    scenario_id TEXT,
    raw BLOB NOT NULL              -- serialized Recipient
);
CREATE TABLE IF NOT EXISTS group_members (
    group_id INTEGER NOT NULL,
    member_id INTEGER NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE TABLE IF NOT EXISTS chats (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    recipient_id INTEGER NOT NULL,
    expiration_timer_ms INTEGER,   -- NULL: field absent
    expire_timer_version INTEGER NOT NULL DEFAULT 0,
    scenario_id TEXT,
    raw BLOB NOT NULL              -- serialized Chat
);
CREATE TABLE IF NOT EXISTS chat_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- global chat item order
    chat_id INTEGER NOT NULL,
    author_id INTEGER NOT NULL,
    date_sent INTEGER NOT NULL,
    date_received INTEGER,
    direction TEXT NOT NULL,       -- incoming, outgoing, directionless
    read INTEGER NOT NULL DEFAULT 0,
    send_unsettled INTEGER NOT NULL DEFAULT 0,  -- a send status is pending or failed
    kind TEXT NOT NULL,            -- standard, view_once, update, remote_deleted, contact, sticker, ...
    update_kind TEXT,              -- for updates: simple, expiration_timer_change, group_change, ...
    text TEXT,                     -- StandardMessage text body; NULL when absent
    quote_text TEXT,
    expires_in_ms INTEGER,         -- NULL: field absent
    expire_start_ms INTEGER,       -- NULL: field absent (timer not started)
    viewed INTEGER NOT NULL DEFAULT 0,          -- a view-once message was opened
    remote_deleted INTEGER NOT NULL DEFAULT 0,  -- deleted for everyone
    deleted_local INTEGER NOT NULL DEFAULT 0,   -- deleted for me (kept only by a defect)
    story_type INTEGER NOT NULL DEFAULT 0,      -- non-zero: a story (never exported)
    parent_story_id INTEGER,                    -- set: a reply to a story
    scenario_id TEXT,
    raw BLOB NOT NULL              -- serialized ChatItem
);
CREATE INDEX IF NOT EXISTS chat_items_by_chat ON chat_items (chat_id, id);
CREATE INDEX IF NOT EXISTS chat_items_by_sent ON chat_items (chat_id, date_sent);
CREATE TABLE IF NOT EXISTS attachments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_item_id INTEGER NOT NULL,
    position INTEGER NOT NULL,     -- index in StandardMessage.attachments; 0 for view-once
    role TEXT NOT NULL,            -- attachment, view_once
    content_type TEXT,
    file_name TEXT,
    caption TEXT,
    size INTEGER NOT NULL DEFAULT 0,
    key BLOB,                      -- 64-byte attachment key (AES || HMAC); empty: no content
    plaintext_hash BLOB,
    encrypted_digest BLOB,
    transit_cdn_key TEXT,
    transit_cdn_number INTEGER,
    transit_upload_ms INTEGER,
    media_tier_cdn_number INTEGER,
    local_file TEXT,               -- file under attachments/ with the plaintext; NULL: not on device
    pending_upload_ms INTEGER,     -- upload time to record once the transit upload succeeds
    thumbnail_file TEXT,           -- file under attachments/ with the thumbnail; NULL: none on device
    thumbnail_media_tier_cdn_number INTEGER,  -- set once the thumbnail is in the media tier
    UNIQUE (chat_item_id, role, position)
);
CREATE TABLE IF NOT EXISTS reactions (
    chat_item_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    emoji TEXT NOT NULL,
    author_id INTEGER NOT NULL,
    sent_ms INTEGER NOT NULL,
    sort_order INTEGER NOT NULL,
    PRIMARY KEY (chat_item_id, position)
);
CREATE TABLE IF NOT EXISTS other_frames (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,            -- sticker_pack, ad_hoc_call, notification_profile, chat_folder
    raw BLOB NOT NULL              -- serialized Frame
);
"""

# Columns that schema version 2 added to ``attachments`` (thumbnails); older stores get them on open.
ADDED_ATTACHMENT_COLUMNS = (
    ("thumbnail_file", "TEXT"),
    ("thumbnail_media_tier_cdn_number", "INTEGER"),
)


class MessageStore:
    """One SQLite connection, shared by the app's threads under a lock."""

    FILE_NAME = "messages.db"

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.RLock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._connection.row_factory = sqlite3.Row
        self._connection.execute("PRAGMA journal_mode=DELETE")
        self._connection.execute("PRAGMA foreign_keys=OFF")
        self._connection.executescript(SCHEMA)
        self._add_missing_columns()
        self._connection.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
        )

    def _add_missing_columns(self) -> None:
        """Add the columns of later schema versions to a store written by an earlier one."""
        present = {row["name"] for row in self._connection.execute("PRAGMA table_info(attachments)")}
        for name, declaration in ADDED_ATTACHMENT_COLUMNS:
            if name not in present:
                self._connection.execute(f"ALTER TABLE attachments ADD COLUMN {name} {declaration}")
                log.info("message store upgraded: added attachments.%s", name)

    def close(self) -> None:
        with self.lock:
            self._connection.close()

    def connection(self) -> sqlite3.Connection:
        """Return the connection in autocommit mode; hold ``lock`` while using it."""
        return self._connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the store lock and run the block in one SQLite transaction."""
        with self.lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def query(self, sql: str, parameters: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self._connection.execute(sql, parameters).fetchall()

    def query_one(self, sql: str, parameters: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Row | None:
        with self.lock:
            return self._connection.execute(sql, parameters).fetchone()

    # --- meta ------------------------------------------------------------------------------

    def get_meta(self, key: str) -> Any:
        row = self.query_one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else row["value"]

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # --- counts ------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {
                "recipients": self._count("recipients"),
                "chats": self._count("chats"),
                "chat_items": self._count("chat_items"),
            }

    def _count(self, table: str) -> int:
        return int(self._connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608

    def is_empty(self) -> bool:
        counts = self.counts()
        return counts["chats"] == 0 and counts["chat_items"] == 0


def next_id(db: sqlite3.Connection, table: str) -> int:
    """Return the next free id of ``recipients`` or ``chats``."""
    row = db.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").fetchone()  # noqa: S608
    return int(row[0])


def next_seq(db: sqlite3.Connection, table: str) -> int:
    row = db.execute(f"SELECT COALESCE(MAX(seq), 0) + 1 FROM {table}").fetchone()  # noqa: S608
    return int(row[0])
