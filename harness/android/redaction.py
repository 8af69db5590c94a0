"""Masking secrets (recovery keys) in text the harness writes to artifacts.

The leak scan needs the raw log, so the log service keeps raw lines in memory; every file it
writes goes through a :class:`Redactor`. A registered secret is matched in any case and with
any spaces or dashes between its characters, which covers a recovery key's raw form and the
grouped form apps display ("ABCD EFGH ...").
"""

from __future__ import annotations

import re
import threading

MASK = "[REDACTED]"
MIN_SECRET_LENGTH = 8


class Redactor:
    """A thread-safe set of secrets and the substitution that hides them."""

    def __init__(self) -> None:
        self._patterns: dict[str, re.Pattern[str]] = {}
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        """Register a secret; shorter than 8 characters is ignored (it would mask noise)."""
        compact = re.sub(r"[\s-]", "", secret)
        if len(compact) < MIN_SECRET_LENGTH:
            return
        pattern = re.compile(r"[\s-]?".join(re.escape(char) for char in compact), re.IGNORECASE)
        with self._lock:
            self._patterns[compact.lower()] = pattern

    def redact(self, text: str) -> str:
        with self._lock:
            patterns = list(self._patterns.values())
        for pattern in patterns:
            text = pattern.sub(MASK, text)
        return text

    def contains_secret(self, text: str) -> bool:
        with self._lock:
            patterns = list(self._patterns.values())
        return any(pattern.search(text) for pattern in patterns)

    @property
    def has_secrets(self) -> bool:
        return bool(self._patterns)

    def __repr__(self) -> str:
        return f"Redactor({len(self._patterns)} secrets)"
