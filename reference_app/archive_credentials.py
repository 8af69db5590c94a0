"""The cache of received backup credentials, one per credential type and UTC day.

The client fetches a week of credentials ahead of time (today ... today + 7 days, eight per
type) and picks today's for each anonymous request, so account-authenticated and anonymous
traffic cannot be tied together by timing. The app persists the cache through a
``CredentialStore``; its state is plain JSON:

    {"version": 1, "owner": "<hex>",
     "credentials": {"messages": {"<day epoch s>": "<base64>", ...}, "media": {...}}}

``owner`` is a hash of the two backup ids the credentials were issued for. A cache saved for
other backup keys (before a recovery key change or a restore) is dropped on load.

A received credential lets its holder make presentations for that backup id, so the store
belongs in the app's private data directory and its contents never go to logs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from libsignal_bridge.zk import TYPE_MEDIA, TYPE_MESSAGES

log = logging.getLogger(__name__)

DAY_SECONDS = 86400
# Android requests today ... today + 7 days (ArchiveApi.getServiceCredentials).
CREDENTIAL_WINDOW_DAYS = 7
STATE_VERSION = 1
TYPE_NAMES = {TYPE_MESSAGES: "messages", TYPE_MEDIA: "media"}


def cache_owner(messages_backup_id: bytes, media_backup_id: bytes) -> str:
    """Return the ``owner`` tag of a cache: SHA-256 of both backup ids, hex, 32 characters."""
    return hashlib.sha256(messages_backup_id + media_backup_id).hexdigest()[:32]


def day_start(now: float) -> int:
    """Return the UTC midnight (epoch seconds) of the day that contains ``now``."""
    return int(now) // DAY_SECONDS * DAY_SECONDS


class CredentialStore(Protocol):
    """Storage that keeps the credential cache between app runs."""

    def load(self) -> dict[str, Any] | None:
        """Return the saved state, or None when nothing was saved yet."""

    def save(self, state: dict[str, Any]) -> None:
        """Replace the saved state."""


class MemoryCredentialStore:
    """A store that lives as long as the process (for tests and one-shot runs)."""

    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None

    def load(self) -> dict[str, Any] | None:
        return self.state

    def save(self, state: dict[str, Any]) -> None:
        self.state = json.loads(json.dumps(state))


class JsonFileCredentialStore:
    """A store in one JSON file, replaced atomically and readable only by its owner."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            state = json.loads(text)
        except ValueError:
            log.warning("credential cache %s is not valid JSON; starting with an empty cache", self.path)
            return None
        return state if isinstance(state, dict) else None

    def save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=".credentials-", dir=self.path.parent)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
                json.dump(state, stream)
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


class CredentialCache:
    """Received credentials by type and redemption day, backed by a store."""

    def __init__(self, store: CredentialStore, owner: str):
        self._store = store
        self._owner = owner
        self._credentials: dict[int, dict[int, bytes]] = {kind: {} for kind in TYPE_NAMES}
        self._load()

    def __repr__(self) -> str:
        counts = {TYPE_NAMES[kind]: len(days) for kind, days in self._credentials.items()}
        return f"CredentialCache({counts})"

    def get(self, credential_type: int, day: int) -> bytes | None:
        """Return the credential for ``day`` (a UTC midnight), or None if it is not cached."""
        return self._credentials[credential_type].get(day)

    def days(self, credential_type: int) -> list[int]:
        """Return the cached redemption days of one type, oldest first."""
        return sorted(self._credentials[credential_type])

    def replace(self, received: dict[int, dict[int, bytes]], today: int) -> None:
        """Store a fresh set of credentials and drop every day before ``today``."""
        for kind in TYPE_NAMES:
            merged = {**self._credentials[kind], **received.get(kind, {})}
            self._credentials[kind] = {day: value for day, value in merged.items() if day >= today}
        self._save()

    def clear(self) -> None:
        """Forget every credential of both types (after an unblinding failure)."""
        self._credentials = {kind: {} for kind in TYPE_NAMES}
        self._save()

    def _load(self) -> None:
        state = self._store.load()
        if not state:
            return
        if state.get("version") != STATE_VERSION or not isinstance(state.get("credentials"), dict):
            log.warning("credential cache has an unknown format; starting with an empty cache")
            return
        if state.get("owner") != self._owner:
            log.info("cached credentials belong to other backup keys; starting with an empty cache")
            return
        for kind, name in TYPE_NAMES.items():
            entries = state["credentials"].get(name) or {}
            try:
                self._credentials[kind] = {int(day): base64.b64decode(value, validate=True) for day, value in entries.items()}
            except (ValueError, TypeError, AttributeError):
                log.warning("credential cache entry for %s is invalid; dropping that type", name)
                self._credentials[kind] = {}

    def _save(self) -> None:
        credentials = {
            TYPE_NAMES[kind]: {str(day): base64.b64encode(value).decode("ascii") for day, value in sorted(days.items())}
            for kind, days in self._credentials.items()
        }
        self._store.save({"version": STATE_VERSION, "owner": self._owner, "credentials": credentials})
