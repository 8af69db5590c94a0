"""The simulated device's log buffer and the ``logcat`` output formats the harness reads."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable
from zoneinfo import ZoneInfo

LEVELS = "VDIWEF"


@dataclasses.dataclass(frozen=True)
class LogEntry:
    """One log record: device time, process, priority, tag and message."""

    sequence: int
    epoch_ms: int
    pid: int
    tid: int
    level: str
    tag: str
    message: str


class LogBuffer:
    """A bounded, thread-safe ring of log entries that readers can follow."""

    def __init__(self, capacity: int = 50_000) -> None:
        self.capacity = capacity
        self._entries: list[LogEntry] = []
        self._next_sequence = 0
        self._changed = threading.Condition()

    def append(self, epoch_ms: int, pid: int, level: str, tag: str, message: str,
               tid: int | None = None) -> LogEntry:
        with self._changed:
            entry = LogEntry(self._next_sequence, epoch_ms, pid, tid or pid, level, tag, message)
            self._next_sequence += 1
            self._entries.append(entry)
            if len(self._entries) > self.capacity:
                del self._entries[: len(self._entries) - self.capacity]
            self._changed.notify_all()
            return entry

    def clear(self) -> None:
        with self._changed:
            self._entries.clear()
            self._changed.notify_all()

    def snapshot(self) -> list[LogEntry]:
        with self._changed:
            return list(self._entries)

    def wait_after(self, sequence: int, timeout: float) -> list[LogEntry]:
        """Return entries newer than ``sequence``, waiting up to ``timeout`` for the first."""
        with self._changed:
            self._changed.wait_for(lambda: self._next_sequence > sequence + 1, timeout)
            return [entry for entry in self._entries if entry.sequence > sequence]

    @property
    def last_sequence(self) -> int:
        with self._changed:
            return self._next_sequence - 1


@dataclasses.dataclass(frozen=True)
class LogFormat:
    """A ``logcat -v`` format: the layout plus the ``epoch``/``UTC``/``year`` modifiers."""

    layout: str = "threadtime"
    epoch: bool = False
    utc: bool = False
    year: bool = False

    def render(self, entry: LogEntry, timezone: str) -> str:
        stamp = self._stamp(entry.epoch_ms, timezone)
        if self.layout == "brief":
            return f"{entry.level}/{entry.tag}({entry.pid:5d}): {entry.message}"
        if self.layout == "time":
            return f"{stamp} {entry.level}/{entry.tag}({entry.pid:5d}): {entry.message}"
        return f"{stamp} {entry.pid:5d} {entry.tid:5d} {entry.level} {entry.tag}: {entry.message}"

    def _stamp(self, epoch_ms: int, timezone: str) -> str:
        if self.epoch:
            return f"{epoch_ms // 1000:10d}.{epoch_ms % 1000:03d}"
        zone = ZoneInfo("UTC") if self.utc else ZoneInfo(timezone)
        moment = dt.datetime.fromtimestamp(epoch_ms / 1000, tz=zone)
        pattern = "%Y-%m-%d %H:%M:%S" if self.year else "%m-%d %H:%M:%S"
        return moment.strftime(pattern) + f".{epoch_ms % 1000:03d}"


def parse_since(text: str, now_ms: int, timezone: str) -> Callable[[LogEntry], bool] | int:
    """Interpret a ``-T``/``-t`` value: a line count, epoch seconds or a 'MM-DD hh:mm:ss.mmm'.

    Returns a count (print the last N lines) or a predicate selecting entries at or after the
    given time.
    """
    text = text.strip().strip("'\"")
    if text.isdigit():
        return int(text)
    try:
        threshold_ms = round(float(text) * 1000)
        return lambda entry: entry.epoch_ms >= threshold_ms
    except ValueError:
        pass
    zone = ZoneInfo(timezone)
    year = dt.datetime.fromtimestamp(now_ms / 1000, tz=zone).year
    for pattern, prefix in (("%Y-%m-%d %H:%M:%S.%f", ""), ("%Y-%m-%d %H:%M:%S.%f", f"{year}-")):
        try:
            moment = dt.datetime.strptime(prefix + text, pattern).replace(tzinfo=zone)
        except ValueError:
            continue
        threshold_ms = round(moment.timestamp() * 1000)
        return lambda entry: entry.epoch_ms >= threshold_ms
    raise ValueError(f"invalid time {text!r}")
