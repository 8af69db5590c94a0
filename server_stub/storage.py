"""SQLite records of the stub: accounts, backup records, uploads, rate limits, settings.

One connection in WAL mode with ``synchronous=FULL`` serves the whole process behind a lock.
Every write is its own transaction, so a SIGKILL leaves either the old row or the new one.
Object bytes live in files (see ``objects.py``); this database holds no object contents.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    aci TEXT PRIMARY KEY,
    e164 TEXT,
    backup_level INTEGER NOT NULL,
    messages_request BLOB,
    media_request BLOB,
    voucher_level INTEGER,
    voucher_expiration INTEGER
);
CREATE TABLE IF NOT EXISTS devices (
    aci TEXT NOT NULL,
    device_id INTEGER NOT NULL,
    password_sha256 TEXT NOT NULL,
    PRIMARY KEY (aci, device_id)
);
CREATE TABLE IF NOT EXISTS backups (
    hashed_id BLOB PRIMARY KEY,
    public_key BLOB,
    backup_dir TEXT NOT NULL,
    media_dir TEXT NOT NULL,
    refreshed_at INTEGER,
    media_refreshed_at INTEGER,
    media_bytes INTEGER NOT NULL DEFAULT 0,
    media_count INTEGER NOT NULL DEFAULT 0,
    cdn INTEGER
);
CREATE TABLE IF NOT EXISTS transit_objects (
    key TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    length INTEGER,
    max_length INTEGER NOT NULL,
    checksum BLOB,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    part_name TEXT NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE TABLE IF NOT EXISTS rate_buckets (
    name TEXT NOT NULL,
    subject TEXT NOT NULL,
    tokens REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (name, subject)
);
CREATE TABLE IF NOT EXISTS receipts (
    serial BLOB PRIMARY KEY,
    aci TEXT NOT NULL,
    level INTEGER NOT NULL,
    expiration INTEGER NOT NULL
);
"""


def hash_backup_id(backup_id: bytes) -> bytes:
    """Return the record key upstream uses: the first 16 bytes of SHA-256(backup id)."""
    return hashlib.sha256(backup_id).digest()[:16]


def random_directory_name() -> str:
    """Return 16 random bytes as URL-safe base64 without padding (22 characters)."""
    return secrets.token_urlsafe(16)


def password_digest(password: str) -> str:
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Account:
    aci: str
    e164: str | None
    backup_level: int
    messages_request: bytes | None
    media_request: bytes | None
    voucher_level: int | None
    voucher_expiration: int | None


@dataclass(frozen=True)
class BackupRecord:
    hashed_id: bytes
    public_key: bytes | None
    backup_dir: str
    media_dir: str
    refreshed_at: int | None
    media_refreshed_at: int | None
    media_bytes: int
    media_count: int
    cdn: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "hashed_id": self.hashed_id.hex(),
            "has_public_key": self.public_key is not None,
            "backup_dir": self.backup_dir,
            "media_dir": self.media_dir,
            "refreshed_at": self.refreshed_at,
            "media_refreshed_at": self.media_refreshed_at,
            "media_bytes": self.media_bytes,
            "media_count": self.media_count,
            "cdn": self.cdn,
        }


@dataclass(frozen=True)
class UploadState:
    bucket: str
    key: str
    length: int | None
    max_length: int
    checksum: bytes | None
    created_at: float
    expires_at: float
    part_name: str


class KeyConflict(Exception):
    """A different public key is already bound to the backup id."""


class Database:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        with self._lock:
            return self._conn.execute(sql, params).rowcount

    # -- settings -------------------------------------------------------------------------

    def get_setting(self, name: str) -> Any:
        rows = self.query("SELECT value FROM settings WHERE name = ?", (name,))
        return json.loads(rows[0]["value"]) if rows else None

    def set_setting(self, name: str, value: Any) -> None:
        self.execute(
            "INSERT INTO settings (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, json.dumps(value)),
        )

    # -- accounts -------------------------------------------------------------------------

    def register_device(self, aci: str, e164: str | None, password: str, device_id: int, level: int) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO accounts (aci, e164, backup_level) VALUES (?, ?, ?) "
                "ON CONFLICT(aci) DO UPDATE SET e164 = coalesce(excluded.e164, e164), "
                "backup_level = excluded.backup_level",
                (aci, e164, level),
            )
            conn.execute(
                "INSERT INTO devices (aci, device_id, password_sha256) VALUES (?, ?, ?) "
                "ON CONFLICT(aci, device_id) DO UPDATE SET password_sha256 = excluded.password_sha256",
                (aci, device_id, password_digest(password)),
            )

    def device_password_digest(self, aci: str, device_id: int) -> str | None:
        rows = self.query("SELECT password_sha256 FROM devices WHERE aci = ? AND device_id = ?", (aci, device_id))
        return rows[0]["password_sha256"] if rows else None

    def get_account(self, aci: str) -> Account | None:
        rows = self.query("SELECT * FROM accounts WHERE aci = ?", (aci,))
        return Account(**dict(rows[0])) if rows else None

    def list_accounts(self) -> list[dict[str, Any]]:
        accounts = []
        for row in self.query("SELECT * FROM accounts ORDER BY aci"):
            devices = self.query("SELECT device_id FROM devices WHERE aci = ? ORDER BY device_id", (row["aci"],))
            accounts.append(
                {
                    "aci": row["aci"],
                    "e164": row["e164"],
                    "backup_level": row["backup_level"],
                    "devices": [device["device_id"] for device in devices],
                    "has_messages_request": row["messages_request"] is not None,
                    "has_media_request": row["media_request"] is not None,
                    "voucher": (
                        {"level": row["voucher_level"], "expiration": row["voucher_expiration"]}
                        if row["voucher_level"] is not None
                        else None
                    ),
                }
            )
        return accounts

    def set_backup_requests(self, aci: str, messages: bytes | None, media: bytes | None) -> None:
        self.execute(
            "UPDATE accounts SET messages_request = ?, media_request = ? WHERE aci = ?", (messages, media, aci)
        )

    def set_voucher(self, aci: str, level: int | None, expiration: int | None) -> None:
        self.execute(
            "UPDATE accounts SET voucher_level = ?, voucher_expiration = ? WHERE aci = ?", (level, expiration, aci)
        )

    def record_receipt(self, serial: bytes, aci: str, level: int, expiration: int) -> bool:
        """Store a redeemed receipt serial; False if it was redeemed with other values."""
        with self.transaction() as conn:
            row = conn.execute("SELECT aci, level, expiration FROM receipts WHERE serial = ?", (serial,)).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO receipts (serial, aci, level, expiration) VALUES (?, ?, ?, ?)",
                    (serial, aci, level, expiration),
                )
                return True
            return (row["aci"], row["level"], row["expiration"]) == (aci, level, expiration)

    # -- backup records -------------------------------------------------------------------

    def get_backup(self, hashed_id: bytes) -> BackupRecord | None:
        rows = self.query("SELECT * FROM backups WHERE hashed_id = ?", (hashed_id,))
        return BackupRecord(**dict(rows[0])) if rows else None

    def list_backups(self) -> list[BackupRecord]:
        return [BackupRecord(**dict(row)) for row in self.query("SELECT * FROM backups ORDER BY hashed_id")]

    def bind_public_key(self, hashed_id: bytes, public_key: bytes, refreshed_at: int, paid: bool) -> BackupRecord:
        """Create the record if needed and bind ``public_key`` once; raise KeyConflict on a
        different key. Refreshes the record like upstream's setPublicKey."""
        with self.transaction() as conn:
            row = conn.execute("SELECT public_key FROM backups WHERE hashed_id = ?", (hashed_id,)).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO backups (hashed_id, backup_dir, media_dir) VALUES (?, ?, ?)",
                    (hashed_id, random_directory_name(), random_directory_name()),
                )
            elif row["public_key"] is not None and bytes(row["public_key"]) != public_key:
                raise KeyConflict()
            conn.execute("UPDATE backups SET public_key = ? WHERE hashed_id = ?", (public_key, hashed_id))
            self._refresh(conn, hashed_id, refreshed_at, paid)
        record = self.get_backup(hashed_id)
        assert record is not None
        return record

    def refresh_backup(self, hashed_id: bytes, refreshed_at: int, paid: bool, set_cdn: bool = False) -> None:
        with self.transaction() as conn:
            self._refresh(conn, hashed_id, refreshed_at, paid)
            if set_cdn:
                conn.execute("UPDATE backups SET cdn = 3 WHERE hashed_id = ?", (hashed_id,))

    @staticmethod
    def _refresh(conn: sqlite3.Connection, hashed_id: bytes, refreshed_at: int, paid: bool) -> None:
        conn.execute("UPDATE backups SET refreshed_at = ? WHERE hashed_id = ?", (refreshed_at, hashed_id))
        if paid:
            conn.execute("UPDATE backups SET media_refreshed_at = ? WHERE hashed_id = ?", (refreshed_at, hashed_id))

    def delete_backup(self, hashed_id: bytes) -> None:
        self.execute("DELETE FROM backups WHERE hashed_id = ?", (hashed_id,))

    def add_media_usage(self, hashed_id: bytes, bytes_delta: int, count_delta: int) -> None:
        self.execute(
            "UPDATE backups SET media_bytes = max(0, media_bytes + ?), media_count = max(0, media_count + ?) "
            "WHERE hashed_id = ?",
            (bytes_delta, count_delta, hashed_id),
        )

    def reset_media(self, hashed_id: bytes) -> str:
        """Give the record a new media directory, zero its usage and clear MR."""
        media_dir = random_directory_name()
        self.execute(
            "UPDATE backups SET media_dir = ?, media_bytes = 0, media_count = 0, media_refreshed_at = NULL "
            "WHERE hashed_id = ?",
            (media_dir, hashed_id),
        )
        return media_dir

    # -- transit objects ------------------------------------------------------------------

    def add_transit_object(self, key: str, created_at: int) -> None:
        self.execute(
            "INSERT INTO transit_objects (key, created_at) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET created_at = excluded.created_at",
            (key, created_at),
        )

    def transit_created_at(self, key: str) -> int | None:
        rows = self.query("SELECT created_at FROM transit_objects WHERE key = ?", (key,))
        return rows[0]["created_at"] if rows else None

    def transit_objects_before(self, cutoff: int) -> list[str]:
        return [row["key"] for row in self.query("SELECT key FROM transit_objects WHERE created_at < ?", (cutoff,))]

    def delete_transit_object(self, key: str) -> None:
        self.execute("DELETE FROM transit_objects WHERE key = ?", (key,))

    # -- uploads --------------------------------------------------------------------------

    def get_upload(self, bucket: str, key: str) -> UploadState | None:
        rows = self.query("SELECT * FROM uploads WHERE bucket = ? AND key = ?", (bucket, key))
        return UploadState(**dict(rows[0])) if rows else None

    def put_upload(self, state: UploadState) -> None:
        self.execute(
            "INSERT OR REPLACE INTO uploads (bucket, key, length, max_length, checksum, created_at, expires_at, "
            "part_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                state.bucket,
                state.key,
                state.length,
                state.max_length,
                state.checksum,
                state.created_at,
                state.expires_at,
                state.part_name,
            ),
        )

    def set_upload_length(self, bucket: str, key: str, length: int) -> None:
        self.execute("UPDATE uploads SET length = ? WHERE bucket = ? AND key = ?", (length, bucket, key))

    def delete_upload(self, bucket: str, key: str, part_name: str | None = None) -> None:
        if part_name is None:
            self.execute("DELETE FROM uploads WHERE bucket = ? AND key = ?", (bucket, key))
        else:
            self.execute(
                "DELETE FROM uploads WHERE bucket = ? AND key = ? AND part_name = ?", (bucket, key, part_name)
            )

    def list_uploads(self) -> list[UploadState]:
        return [UploadState(**dict(row)) for row in self.query("SELECT * FROM uploads ORDER BY bucket, key")]

    # -- rate limits ----------------------------------------------------------------------

    def take_permits(
        self, name: str, subject: str, cost: float, bucket_size: float, regen_seconds: float, now: float
    ) -> float:
        """Take ``cost`` permits if available; return 0 on success, else the seconds to wait."""
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT tokens, updated_at FROM rate_buckets WHERE name = ? AND subject = ?", (name, subject)
            ).fetchone()
            tokens = bucket_size if row is None else row["tokens"]
            if row is not None and now > row["updated_at"]:
                tokens = min(bucket_size, tokens + (now - row["updated_at"]) / regen_seconds)
            if tokens < cost:
                return (cost - tokens) * regen_seconds
            conn.execute(
                "INSERT OR REPLACE INTO rate_buckets (name, subject, tokens, updated_at) VALUES (?, ?, ?, ?)",
                (name, subject, tokens - cost, now),
            )
            return 0.0

    def has_permit(self, name: str, subject: str, bucket_size: float, regen_seconds: float, now: float) -> bool:
        rows = self.query("SELECT tokens, updated_at FROM rate_buckets WHERE name = ? AND subject = ?", (name, subject))
        if not rows:
            return True
        tokens = min(bucket_size, rows[0]["tokens"] + max(0.0, now - rows[0]["updated_at"]) / regen_seconds)
        return tokens >= 1

    # -- reset ----------------------------------------------------------------------------

    def clear(self, keep_accounts: bool) -> None:
        with self.transaction() as conn:
            tables = ["backups", "transit_objects", "uploads", "rate_buckets", "receipts", "settings"]
            if not keep_accounts:
                tables += ["accounts", "devices"]
            for table in tables:
                conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
