"""Durations and points in time as scenario files write them.

A duration is a sum of terms such as ``24h``, ``1d12h``, ``86400000ms`` or ``24h-1ms``. The
units are ``w``, ``d``, ``h``, ``m``, ``s`` and ``ms``. A ``+`` or ``-`` applies to the terms
after it up to the next sign. A bare integer is a number of milliseconds.

A time is ``now``, a duration relative to the scenario clock (``-3d``, ``now-23h59m``,
``+1h``), or an absolute ISO-8601 date and time with a UTC offset
(``2025-03-01T02:00:00Z``). Relative times need a leading sign so that ``3d`` is never
mistaken for a time.
"""

from __future__ import annotations

import datetime
import re

UNIT_MS = {
    "w": 7 * 86_400_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1_000,
    "ms": 1,
}

# "ms" comes before "m" and "s" so that "5ms" is read as 5 milliseconds.
_TERM = r"\d+(?:ms|s|m|h|d|w)"
DURATION_PATTERN = rf"^{_TERM}(?:[+-]?{_TERM})*$"
_SIGNED = rf"[+-]{_TERM}(?:[+-]?{_TERM})*"
_ISO = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})"
TIME_PATTERN = rf"^(?:now|(?:now)?{_SIGNED}|{_ISO})$"
ABSOLUTE_TIME_PATTERN = rf"^{_ISO}$"

_DURATION_RE = re.compile(DURATION_PATTERN)
_SIGNED_RE = re.compile(rf"^{_SIGNED}$")
_ISO_RE = re.compile(ABSOLUTE_TIME_PATTERN)
_TOKEN_RE = re.compile(r"([+-]?)(\d+)(ms|s|m|h|d|w)")

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
DURATION_HINT = "is not a duration like 24h or 86400000ms"
TIME_HINT = "is not a time like now, -3d, -23h59m or 2025-03-01T02:00:00Z (with Z or a UTC offset)"


def _sum_terms(text: str) -> int:
    total = 0
    sign = 1
    for sign_text, number, unit in _TOKEN_RE.findall(text):
        if sign_text:
            sign = -1 if sign_text == "-" else 1
        total += sign * int(number) * UNIT_MS[unit]
    return total


def parse_duration(value: int | str) -> int:
    """Return a duration in milliseconds; raise ValueError with a hint when it is malformed."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} {DURATION_HINT}")
    if isinstance(value, int):
        return value
    if not isinstance(value, str) or not _DURATION_RE.match(value):
        raise ValueError(f"{value!r} {DURATION_HINT}")
    return _sum_terms(value)


def parse_absolute_time(value: str) -> int:
    """Return an ISO-8601 date and time with a UTC offset as epoch milliseconds."""
    if not _ISO_RE.match(value):
        raise ValueError(f"{value!r} is not an absolute time like 2025-03-01T02:00:00Z")
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError as error:
        raise ValueError(f"{value!r} is not a valid date and time ({error})") from None
    return (parsed - _EPOCH) // datetime.timedelta(milliseconds=1)


def parse_time(value: str, now_ms: int) -> int:
    """Return a scenario time as epoch milliseconds, reading relative times against ``now_ms``."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} {TIME_HINT}")
    if value == "now":
        return now_ms
    offset = value[3:] if value.startswith("now") else value
    if _SIGNED_RE.match(offset):
        return now_ms + _sum_terms(offset)
    if _ISO_RE.match(value):
        return parse_absolute_time(value)
    raise ValueError(f"{value!r} {TIME_HINT}")


def format_duration(ms: int) -> str:
    """Return ``ms`` in the largest units that divide it exactly, e.g. 90000000 -> "1d1h"."""
    if ms == 0:
        return "0ms"
    sign = "-" if ms < 0 else ""
    rest = abs(ms)
    parts = []
    for unit in ("d", "h", "m", "s", "ms"):
        count, rest = divmod(rest, UNIT_MS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)
