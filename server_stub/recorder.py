"""Recording of every request and response on the app-facing port.

Each exchange becomes one JSON record in ``<data>/recordings.sqlite`` (format in
ADMIN_API.md). Request bodies are streamed to ``<data>/tmp`` while they arrive, hashed, and
kept once per SHA-256 in ``<data>/bodies/<sha256>``, so a 20 MB upload is never held in
memory and recording it twice costs one file. Response bodies are hashed, and kept too when
they are small (``store_response_bodies_up_to``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("server_stub.requests")

ACCOUNT_ROUTES = {
    ("PUT", "/v1/archives/backupid"),
    ("GET", "/v1/archives/backupid/limits"),
    ("POST", "/v1/archives/redeem-receipt"),
    ("GET", "/v1/archives/auth"),
    ("GET", "/v4/attachments/form/upload"),
}
CDN_PREFIXES = ("/upload/", "/backups/", "/attachments/")
MARKER_SETTING = "marker"

SCHEMA = """
CREATE TABLE IF NOT EXISTS recordings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    marker TEXT,
    plane TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS recordings_marker ON recordings (marker);
CREATE TABLE IF NOT EXISTS recorder_settings (name TEXT PRIMARY KEY, value TEXT);
"""


def classify_plane(method: str, path: str) -> str:
    """Return "account" (carries account auth), "archive" (zero-knowledge auth), "cdn" or
    "other"."""
    if (method, path) in ACCOUNT_ROUTES:
        return "account"
    if path == "/v1/archives" or path.startswith("/v1/archives/"):
        return "archive"
    if path.startswith(CDN_PREFIXES) or path == "/upload":
        return "cdn"
    return "other"


class BodySink:
    """Hash a body while it streams and keep it in a temp file (unless it outgrows
    ``keep_up_to``, then only the hash and size are kept)."""

    def __init__(self, store: RecordingStore, keep_up_to: int | None):
        self._store = store
        self._keep_up_to = keep_up_to
        self._digest = hashlib.sha256()
        self.size = 0
        self._temp: Path | None = None
        self._handle: BinaryIO | None = None
        self._dropped = False

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._digest.update(data)
        self.size += len(data)
        if self._dropped:
            return
        if self._keep_up_to is not None and self.size > self._keep_up_to:
            self._drop_file()
            return
        if self._handle is None:
            self._temp = self._store.tmp / f"body-{uuid.uuid4().hex}"
            self._handle = self._temp.open("wb")
        self._handle.write(data)

    def _drop_file(self) -> None:
        self._dropped = True
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)

    def finish(self) -> dict[str, Any]:
        sha256 = self._digest.hexdigest()
        stored = None
        if self._handle is not None and self._temp is not None:
            self._handle.close()
            self._handle = None
            stored = self._store.keep_body(self._temp, sha256)
        return {"sha256": sha256, "size": self.size, "stored": stored}


class RecordingStore:
    def __init__(self, data_dir: Path, keep_response_bodies_up_to: int):
        self.data_dir = Path(data_dir)
        self.bodies = self.data_dir / "bodies"
        self.tmp = self.data_dir / "tmp"
        self.bodies.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.keep_response_bodies_up_to = keep_response_bodies_up_to
        self._conn = sqlite3.connect(self.data_dir / "recordings.sqlite", check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(SCHEMA)
            row = self._conn.execute("SELECT value FROM recorder_settings WHERE name = ?", (MARKER_SETTING,)).fetchone()
        self._marker: str | None = row["value"] if row else None

    @property
    def marker(self) -> str | None:
        return self._marker

    def set_marker(self, name: str | None) -> None:
        with self._lock:
            self._marker = name
            self._conn.execute(
                "INSERT OR REPLACE INTO recorder_settings (name, value) VALUES (?, ?)", (MARKER_SETTING, name)
            )

    def keep_body(self, temp: Path, sha256: str) -> str | None:
        """Move a body temp file to ``bodies/<sha256>`` (or drop it if that exists); None if
        a reset removed the temp file while the request ran."""
        target = self.bodies / sha256
        if target.exists():
            temp.unlink(missing_ok=True)
            return f"bodies/{sha256}"
        try:
            os.replace(temp, target)
        except FileNotFoundError:
            log.warning("recorded body %s was removed by a reset before it was kept", sha256)
            return None
        return f"bodies/{sha256}"

    def body_path(self, sha256: str) -> Path | None:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            return None
        path = self.bodies / sha256
        return path if path.is_file() else None

    def add(self, record: dict[str, Any]) -> int:
        with self._lock:
            cursor = self._conn.execute(
                "INSERT INTO recordings (marker, plane, record) VALUES (?, ?, ?)",
                (record.get("marker"), record["plane"], json.dumps(record)),
            )
            return int(cursor.lastrowid)

    def list(
        self,
        marker: str | None = None,
        plane: str | None = None,
        since_id: int | None = None,
        limit: int = 10000,
    ) -> list[dict[str, Any]]:
        clauses, params = [], []
        if marker is not None:
            clauses.append("marker = ?")
            params.append(marker)
        if plane is not None:
            clauses.append("plane = ?")
            params.append(plane)
        if since_id is not None:
            clauses.append("id > ?")
            params.append(since_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT id, record FROM recordings {where} ORDER BY id LIMIT ?"  # noqa: S608 - fixed clauses
        with self._lock:
            rows = self._conn.execute(sql, (*params, limit)).fetchall()
        return [{**json.loads(row["record"]), "id": row["id"]} for row in rows]

    def get(self, record_id: int) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT id, record FROM recordings WHERE id = ?", (record_id,)).fetchone()
        return {**json.loads(row["record"]), "id": row["id"]} if row else None

    def clear(self) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM recordings")
            self._conn.execute("DELETE FROM recorder_settings")
            self._marker = None
        for entry in self.bodies.iterdir():
            entry.unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def decode_headers(raw: list[tuple[bytes, bytes]]) -> list[list[str]]:
    return [[name.decode("latin-1"), value.decode("latin-1")] for name, value in raw]


class RecorderMiddleware:
    """Outermost middleware of the app-facing port: records the exchange as the client saw it,
    faults included."""

    def __init__(self, app: ASGIApp, store: RecordingStore, clock_now: callable):  # type: ignore[valid-type]
        self.app = app
        self.store = store
        self.clock_now = clock_now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope.setdefault("stub.faults", [])
        record: dict[str, Any] = {
            "time": self.clock_now(),
            "wall_time": time.time(),
            "marker": self.store.marker,
            "plane": classify_plane(scope["method"], scope["path"]),
            "method": scope["method"],
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode("latin-1"),
            "headers": decode_headers(scope.get("headers", [])),
            "client": list(scope["client"]) if scope.get("client") else None,
            "http_version": scope.get("http_version"),
        }
        request_body = BodySink(self.store, None)
        response_body = BodySink(self.store, self.store.keep_response_bodies_up_to)
        response: dict[str, Any] = {"status": None, "headers": []}
        outcome = {"value": "completed"}

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                request_body.write(message.get("body", b""))
            elif message["type"] == "http.disconnect":
                outcome["value"] = "client_disconnected"
            return message

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response["headers"] = decode_headers(list(message.get("headers", [])))
            elif message["type"] == "http.response.body":
                response_body.write(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, recording_receive, recording_send)
        except BaseException:
            outcome["value"] = "server_error"
            raise
        finally:
            record["request_body"] = request_body.finish()
            record["status"] = response["status"]
            record["response_headers"] = response["headers"]
            record["response_body"] = response_body.finish()
            record["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
            record["faults"] = scope.get("stub.faults", [])
            record["outcome"] = scope.get("stub.outcome", outcome["value"])
            record_id = self.store.add(record)
            log.info(
                "%s %s -> %s (%.1f ms, %d bytes in, #%d%s)",
                record["method"],
                record["path"],
                record["status"] if record["status"] is not None else record["outcome"],
                record["duration_ms"],
                record["request_body"]["size"],
                record_id,
                f", faults {record['faults']}" if record["faults"] else "",
            )
