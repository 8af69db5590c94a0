"""The app log, the stand-in for logcat: one line per event, appended to a file.

Every module logs through the standard ``logging`` package; ``AppLogHandler`` writes each
record as ``<device time ISO UTC> <level letter> <component>: <message>`` and wakes threads
that wait for a pattern. Positions are byte offsets into the file, so the harness can also
read the file directly while the app is stopped.
"""

from __future__ import annotations

import datetime
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from reference_app.clock import DeviceClock

LEVEL_LETTERS = {logging.DEBUG: "D", logging.INFO: "I", logging.WARNING: "W", logging.ERROR: "E"}


@dataclass(frozen=True)
class Line:
    offset: int
    text: str


def component_of(logger_name: str) -> str:
    """Map a module logger name (``reference_app.backup_job``) to its log component."""
    last = logger_name.rsplit(".", 1)[-1]
    return {
        "backup_job": "backup",
        "export": "backup",
        "schedule": "schedule",
        "media": "media",
        "restore": "restore",
        "importer": "restore",
        "rotation": "backup",
        "store": "store",
        "control": "control",
        "app": "app",
        "__main__": "app",
    }.get(last, "network" if "client" in last or "http" in last or "tus" in last else last)


def read_lines(path: Path, since: int = 0) -> list[Line]:
    """Read the complete lines of the log file that start at or after byte ``since``."""
    try:
        with open(path, "rb") as handle:
            handle.seek(since)
            data = handle.read()
    except FileNotFoundError:
        return []
    lines: list[Line] = []
    offset = since
    for raw in data.splitlines(keepends=True):
        if not raw.endswith(b"\n"):
            break  # a line still being written
        lines.append(Line(offset, raw.rstrip(b"\n").decode("utf-8", "replace")))
        offset += len(raw)
    return lines


class AppLogHandler(logging.Handler):
    """Append formatted records to the log file and notify waiters."""

    def __init__(self, path: Path, clock: DeviceClock):
        super().__init__(level=logging.DEBUG)
        self.path = path
        self._clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab")
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            moment = datetime.datetime.fromtimestamp(self._clock.now_ms() / 1000, tz=datetime.timezone.utc)
            stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
            letter = LEVEL_LETTERS.get(record.levelno, "E" if record.levelno > logging.ERROR else "I")
            message = record.getMessage().replace("\n", " | ")
            if record.exc_info:
                message += " | " + self.format_exception(record).replace("\n", " | ")
            line = f"{stamp} {letter} {component_of(record.name)}: {message}\n"
            with self._changed:
                self._file.write(line.encode("utf-8"))
                self._file.flush()
                self._changed.notify_all()
        except Exception:  # noqa: BLE001 - logging must never break the app
            self.handleError(record)

    @staticmethod
    def format_exception(record: logging.LogRecord) -> str:
        return logging.Formatter().formatException(record.exc_info)  # type: ignore[arg-type]

    def end(self) -> int:
        with self._changed:
            return self._file.tell()

    def read(self, since: int = 0) -> list[Line]:
        return read_lines(self.path, since)

    def wait_for(self, pattern: str, since: int, timeout: float) -> Line | None:
        """Return the first line at or after ``since`` that matches ``pattern``, waiting up to
        ``timeout`` seconds for it; None on timeout."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        position = since
        with self._changed:
            while True:
                for line in read_lines(self.path, position):
                    if regex.search(line.text):
                        return line
                    position = line.offset + len(line.text.encode("utf-8")) + 1
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)

    def close(self) -> None:
        with self._changed:
            self._file.close()
        super().close()


def install(path: Path, clock: DeviceClock, level: int = logging.DEBUG) -> AppLogHandler:
    """Route every ``reference_app`` and ``libsignal_bridge`` logger into the app log."""
    handler = AppLogHandler(path, clock)
    for name in ("reference_app", "libsignal_bridge", "harness"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.addHandler(handler)
        logger.propagate = False
    return handler
