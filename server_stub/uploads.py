"""TUS upload state: part files under ``<data>/uploads`` and their rows in SQLite.

The part file is the truth for the upload offset: bytes that reached it count as received,
also after a cut connection or a SIGKILL, which is what makes HEAD-and-resume work. A finished
upload is checked (length, optional SHA-256) and then renamed over the object, so a cut or
killed upload never touches the object that reads return.

One asyncio lock per (bucket, key) serializes appends. A create while an append holds the
lock, or while a started upload (offset > 0) exists, is a conflict (409), as on Signal's cdn3.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
from starlette.requests import ClientDisconnect

from server_stub.clock import Clock
from server_stub.errors import StubError
from server_stub.objects import CHUNK, InvalidObjectPath, ObjectStore, fsync_directory, validate_object_path
from server_stub.storage import Database, UploadState

log = logging.getLogger(__name__)

BUCKETS = ("attachments", "backups")


@dataclass(frozen=True)
class AppendResult:
    offset: int
    complete: bool
    disconnected: bool


class UploadManager:
    def __init__(self, data_dir: Path, db: Database, objects: ObjectStore, clock: Clock, expiry_seconds: int):
        self.parts = Path(data_dir) / "uploads"
        self.parts.mkdir(parents=True, exist_ok=True)
        self._db = db
        self._objects = objects
        self._clock = clock
        self._expiry = expiry_seconds
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    @staticmethod
    def object_path(bucket: str, key: str) -> str:
        if bucket not in BUCKETS:
            raise StubError(404, f"unknown upload bucket {bucket!r}; use attachments or backups")
        try:
            validate_object_path(f"{bucket}/{key}")
        except InvalidObjectPath as error:
            raise StubError(400, f"invalid upload key: {error}") from None
        return f"{bucket}/{key}"

    def lock(self, bucket: str, key: str) -> asyncio.Lock:
        return self._locks.setdefault((bucket, key), asyncio.Lock())

    def part_path(self, state: UploadState) -> Path:
        return self.parts / state.part_name

    def get(self, bucket: str, key: str) -> UploadState | None:
        """Return the live upload for a key; expired or orphaned rows are dropped here."""
        state = self._db.get_upload(bucket, key)
        if state is None:
            return None
        part = self.part_path(state)
        if state.expires_at < self._clock.now() or not part.exists():
            self.discard(state)
            return None
        return state

    def offset(self, state: UploadState) -> int:
        return self.part_path(state).stat().st_size

    def discard(self, state: UploadState) -> None:
        self._db.delete_upload(state.bucket, state.key, state.part_name)
        self.part_path(state).unlink(missing_ok=True)

    def create(self, bucket: str, key: str, length: int | None, max_length: int, checksum: bytes | None) -> UploadState:
        self.object_path(bucket, key)
        if self.lock(bucket, key).locked():
            raise StubError(409, f"an upload to {bucket}/{key} is in progress")
        existing = self.get(bucket, key)
        if existing is not None:
            if self.offset(existing) > 0:
                raise StubError(409, f"an upload to {bucket}/{key} is in progress")
            self.discard(existing)
        now = self._clock.now()
        state = UploadState(
            bucket=bucket,
            key=key,
            length=length,
            max_length=max_length,
            checksum=checksum,
            created_at=now,
            expires_at=now + self._expiry,
            part_name=f"{uuid.uuid4().hex}.part",
        )
        self.part_path(state).touch()
        fsync_directory(self.parts)
        self._db.put_upload(state)
        log.info("upload created: %s/%s (length %s)", bucket, key, length if length is not None else "deferred")
        return state

    async def append(
        self,
        state: UploadState,
        offset: int,
        length: int | None,
        content_length: int | None,
        stream: AsyncIterator[bytes],
    ) -> AppendResult:
        """Append a request body at ``offset``; the caller holds the key's lock."""
        current = self.offset(state)
        if offset != current:
            raise StubError(409, f"Upload-Offset {offset} does not match the current offset {current}")
        state = self._settle_length(state, length, current)
        limit = state.length if state.length is not None else state.max_length
        if content_length is not None and current + content_length > limit:
            raise StubError(413, f"body of {content_length} bytes at offset {current} exceeds the upload length {limit}")

        part = self.part_path(state)
        written = 0
        disconnected = False
        # Unbuffered: every received chunk reaches the file at once, so the offset is exact.
        with part.open("ab", buffering=0) as handle:
            try:
                async for chunk in stream:
                    if current + written + len(chunk) > limit:
                        handle.truncate(current)
                        raise StubError(413, f"body exceeds the upload length {limit}")
                    handle.write(chunk)
                    written += len(chunk)
            except ClientDisconnect:
                disconnected = True
            handle.flush()
            await anyio.to_thread.run_sync(os.fsync, handle.fileno())

        new_offset = current + written
        complete = state.length is not None and new_offset == state.length
        if complete:
            await anyio.to_thread.run_sync(self._finish, state)
        log.info(
            "upload %s/%s: +%d bytes, offset %d%s%s",
            state.bucket,
            state.key,
            written,
            new_offset,
            ", complete" if complete else "",
            ", client disconnected" if disconnected else "",
        )
        return AppendResult(new_offset, complete, disconnected)

    def _settle_length(self, state: UploadState, length: int | None, current: int) -> UploadState:
        if length is None:
            return state
        if state.length is not None:
            if length != state.length:
                raise StubError(400, f"Upload-Length {length} differs from the declared length {state.length}")
            return state
        if length < current:
            raise StubError(400, f"Upload-Length {length} is below the bytes already received ({current})")
        if length > state.max_length:
            raise StubError(413, f"Upload-Length {length} exceeds the token's maxLen {state.max_length}")
        self._db.set_upload_length(state.bucket, state.key, length)
        return self._db.get_upload(state.bucket, state.key) or state

    def _finish(self, state: UploadState) -> None:
        part = self.part_path(state)
        if state.checksum is not None and sha256_file(part) != state.checksum:
            self.discard(state)
            raise StubError(415, "X-Signal-Checksum-Sha256 does not match the uploaded bytes")
        logical = self.object_path(state.bucket, state.key)
        self._objects.install(part, logical)
        self._db.delete_upload(state.bucket, state.key, state.part_name)
        if state.bucket == "attachments":
            self._db.add_transit_object(state.key, int(self._clock.now()))

    def expire(self, now: float) -> int:
        expired = [state for state in self._db.list_uploads() if state.expires_at < now]
        for state in expired:
            self.discard(state)
        return len(expired)

    def clear(self) -> None:
        for state in self._db.list_uploads():
            self.discard(state)
        for entry in self.parts.iterdir():
            entry.unlink(missing_ok=True)


def sha256_file(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.digest()
