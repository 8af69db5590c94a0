"""The app's key store: the recovery key and the media root key, in ``keystore.json`` (mode 0600).

This file is the only place the app keeps the recovery key. A phone would keep it in the
platform keystore; the message store and the log never see it.
"""

from __future__ import annotations

import base64
import threading
from pathlib import Path

from reference_app.device import read_json, write_json_atomic


class KeyStore:
    """Secrets of this install; nothing here appears in a repr, a log line or an error."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._data = read_json(path)

    def __repr__(self) -> str:
        return f"KeyStore({self.path})"

    @property
    def recovery_key(self) -> str | None:
        return self._data.get("recovery_key")

    @property
    def media_root_key(self) -> bytes | None:
        value = self._data.get("media_root_key")
        return base64.b64decode(value) if value else None

    @property
    def forward_secrecy_token(self) -> bytes | None:
        value = self._data.get("forward_secrecy_token")
        return base64.b64decode(value) if value else None

    def store(
        self,
        *,
        recovery_key: str | None = None,
        media_root_key: bytes | None = None,
        forward_secrecy_token: bytes | None = None,
    ) -> None:
        """Store the given secrets (others keep their values) and write the file atomically."""
        with self._lock:
            if recovery_key is not None:
                self._data["recovery_key"] = recovery_key
            if media_root_key is not None:
                self._data["media_root_key"] = base64.b64encode(media_root_key).decode("ascii")
            if forward_secrecy_token is not None:
                self._data["forward_secrecy_token"] = base64.b64encode(forward_secrecy_token).decode("ascii")
            write_json_atomic(self.path, self._data)

    def clear(self) -> None:
        with self._lock:
            self._data = {}
            write_json_atomic(self.path, self._data)
