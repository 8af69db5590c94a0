"""The reference app's loopback control API, as the hosted app's "UI thread" calls it."""

from __future__ import annotations

from typing import Any

import requests

REQUEST_TIMEOUT_S = 120.0


class AppRejected(Exception):
    """The app rejected a control request with an error status (shown to the user as an error)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class AppGone(Exception):
    """The app process is not running or did not respond."""


class ControlClient:
    """The loopback control API of one reference app process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.trust_env = False

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             timeout: float = REQUEST_TIMEOUT_S) -> dict[str, Any]:
        try:
            response = self.session.request(method, self.url + path, json=body, timeout=(5, timeout))
        except requests.RequestException as error:
            raise AppGone(f"{method} {path}: {error}") from None
        try:
            payload = response.json()
        except ValueError:
            raise AppGone(f"{method} {path}: HTTP {response.status_code} without JSON") from None
        if response.status_code >= 400:
            error = payload.get("error", {}) if isinstance(payload, dict) else {}
            raise AppRejected(str(error.get("code", "error")), str(error.get("message", f"HTTP {response.status_code}")))
        return payload

    def close(self) -> None:
        self.session.close()
