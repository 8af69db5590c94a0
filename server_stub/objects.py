"""CDN objects as files under ``<data>/objects``, written atomically.

Object names are logical paths such as ``backups/<backupDir>/messageBackup``,
``backups/<backupDir>/<mediaDir>/<mediaId>`` and ``attachments/<key>``. Every segment must be
1 to 128 characters of the URL-safe base64 alphabet. So ``..``, ``%2e%2e`` (which the router
decodes first), absolute paths, empty segments and NUL bytes are rejected before any file is
opened. The resolved path is also checked to lie under the objects root.

A new object is written to ``<data>/tmp`` first, fsynced, then renamed over the old one and
the directory fsynced. A reader or a crash therefore sees either the whole old object or the
whole new one.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

SEGMENT = re.compile(r"[A-Za-z0-9_-]{1,128}")
MAX_SEGMENTS = 4
CHUNK = 1024 * 1024


class InvalidObjectPath(ValueError):
    """An object path has a segment outside the allowed alphabet, or escapes the root."""


def validate_object_path(logical: str) -> list[str]:
    """Split a logical object path and check every segment; raise InvalidObjectPath."""
    if not isinstance(logical, str) or not logical:
        raise InvalidObjectPath("object path is empty")
    segments = logical.split("/")
    if len(segments) > MAX_SEGMENTS:
        raise InvalidObjectPath(f"object path has more than {MAX_SEGMENTS} segments")
    for segment in segments:
        if not SEGMENT.fullmatch(segment):
            raise InvalidObjectPath(
                f"object path segment {segment[:40]!r} is invalid; segments are 1-128 characters of "
                "A-Z, a-z, 0-9, '-' and '_'"
            )
    return segments


def fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ObjectStore:
    def __init__(self, data_dir: Path):
        self.root = (Path(data_dir) / "objects").resolve()
        self.tmp = (Path(data_dir) / "tmp").resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def resolve(self, logical: str) -> Path:
        segments = validate_object_path(logical)
        path = self.root.joinpath(*segments)
        # Belt and braces: the segment check already excludes every escape.
        if not path.resolve().is_relative_to(self.root):
            raise InvalidObjectPath("object path escapes the object store")
        return path

    def size(self, logical: str) -> int | None:
        try:
            return self.resolve(logical).stat().st_size
        except FileNotFoundError:
            return None

    def exists(self, logical: str) -> bool:
        return self.resolve(logical).is_file()

    def open_read(self, logical: str) -> BinaryIO:
        path = self.resolve(logical)
        if not path.is_file():
            raise FileNotFoundError(logical)
        return path.open("rb")

    def new_temp_path(self, suffix: str = ".tmp") -> Path:
        return self.tmp / f"{uuid.uuid4().hex}{suffix}"

    @contextmanager
    def writer(self, logical: str) -> Iterator[BinaryIO]:
        """Yield a file for a new version of ``logical``.

        On normal exit the file replaces the object atomically. On an exception it is
        discarded, and the old object stays."""
        target = self.resolve(logical)
        temp = self.new_temp_path()
        try:
            with temp.open("wb") as handle:
                yield handle
            self.install(temp, logical)
        finally:
            temp.unlink(missing_ok=True)

    def install(self, temp: Path, logical: str) -> None:
        """Fsync ``temp`` and rename it over the object ``logical``."""
        target = self.resolve(logical)
        with temp.open("rb+") as handle:
            os.fsync(handle.fileno())
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)
        fsync_directory(target.parent)

    def delete(self, logical: str) -> int | None:
        """Delete one object; return its size, or None if it did not exist."""
        path = self.resolve(logical)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return None
        return size

    def delete_tree(self, logical_prefix: str) -> None:
        path = self.resolve(logical_prefix)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.is_file():
            path.unlink()

    def list(self, logical_prefix: str = "") -> list[dict[str, object]]:
        base = self.resolve(logical_prefix) if logical_prefix else self.root
        if not base.exists():
            return []
        paths = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        objects = []
        for path in paths:
            stat = path.stat()
            objects.append(
                {"path": path.relative_to(self.root).as_posix(), "size": stat.st_size, "mtime": stat.st_mtime}
            )
        return objects

    def list_names(self, logical_dir: str) -> list[tuple[str, int]]:
        """Return (name, size) of the files directly in ``logical_dir``, sorted by name."""
        path = self.resolve(logical_dir)
        if not path.is_dir():
            return []
        return sorted((entry.name, entry.stat().st_size) for entry in os.scandir(path) if entry.is_file())

    def corrupt(self, logical: str, offset: int | None = None, bit: int = 0) -> int:
        """Flip one bit of a stored object in place (the middle byte by default); return the
        offset flipped."""
        path = self.resolve(logical)
        size = path.stat().st_size
        if size == 0:
            raise ValueError(f"object {logical} is empty; there is no bit to flip")
        offset = size // 2 if offset is None else offset
        if not 0 <= offset < size:
            raise ValueError(f"offset {offset} is outside object {logical} of {size} bytes")
        with path.open("rb+") as handle:
            handle.seek(offset)
            value = handle.read(1)[0]
            handle.seek(offset)
            handle.write(bytes([value ^ (1 << (bit % 8))]))
            os.fsync(handle.fileno())
        log.info("flipped bit %d at offset %d of %s", bit % 8, offset, logical)
        return offset

    def clear(self) -> None:
        for directory in (self.root, self.tmp):
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True, exist_ok=True)

    def clear_temp(self) -> None:
        """Remove temp files left by a crash; called at start."""
        for entry in self.tmp.iterdir():
            if entry.is_file():
                entry.unlink(missing_ok=True)
