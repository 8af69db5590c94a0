"""The app's key store: the recovery key and the media root key, in ``keystore.json``.

A phone keeps such secrets wrapped by a hardware-backed key that never leaves the system
keystore. The reference app does the same with a 32-byte wrapping key kept in the device file
(outside the data directory): ``keystore.json`` holds only AES-256-GCM ciphertext, so no file
of the app's data directory contains the recovery key in any readable form.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from reference_app.device import DeviceState, read_json, write_json_atomic

WRAPPING_KEY_FIELD = "keystore_wrapping_key"
NONCE_LENGTH = 12
ASSOCIATED_DATA = b"reference-app keystore v1"


class KeyStoreError(Exception):
    """The key store cannot be opened (its wrapping key is gone or the file was changed)."""


class KeyStore:
    """Secrets of this install; nothing here appears in a repr, a log line or an error."""

    def __init__(self, path: Path, device: DeviceState):
        self.path = path
        self._device = device
        self._lock = threading.Lock()
        self._data = self._load()

    def __repr__(self) -> str:
        return f"KeyStore({self.path})"

    def _wrapping_key(self) -> bytes:
        value = self._device.get(WRAPPING_KEY_FIELD)
        if value is None:
            value = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
            self._device.update(**{WRAPPING_KEY_FIELD: value})
        return base64.b64decode(value)

    def _load(self) -> dict[str, Any]:
        stored = read_json(self.path)
        if not stored:
            return {}
        try:
            nonce = base64.b64decode(stored["nonce"])
            ciphertext = base64.b64decode(stored["ciphertext"])
            plaintext = AESGCM(self._wrapping_key()).decrypt(nonce, ciphertext, ASSOCIATED_DATA)
        except (KeyError, ValueError, InvalidTag):
            raise KeyStoreError(
                f"{self.path} cannot be opened with this device's keystore key; wipe the app data"
            ) from None
        return json.loads(plaintext)

    def _save(self) -> None:
        nonce = secrets.token_bytes(NONCE_LENGTH)
        plaintext = json.dumps(self._data).encode("utf-8")
        ciphertext = AESGCM(self._wrapping_key()).encrypt(nonce, plaintext, ASSOCIATED_DATA)
        write_json_atomic(
            self.path,
            {"nonce": base64.b64encode(nonce).decode("ascii"), "ciphertext": base64.b64encode(ciphertext).decode("ascii")},
        )

    @property
    def recovery_key(self) -> str | None:
        return self._data.get("recovery_key")

    @property
    def media_root_key(self) -> bytes | None:
        value = self._data.get("media_root_key")
        return base64.b64decode(value) if value else None

    def store(self, *, recovery_key: str | None = None, media_root_key: bytes | None = None) -> None:
        """Store the given secrets (others keep their values) and write the file atomically."""
        with self._lock:
            if recovery_key is not None:
                self._data["recovery_key"] = recovery_key
            if media_root_key is not None:
                self._data["media_root_key"] = base64.b64encode(media_root_key).decode("ascii")
            self._save()

    def clear(self) -> None:
        with self._lock:
            self._data = {}
            self._save()
