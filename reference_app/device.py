"""Device state that is not app data: the clock offset, the time zone and the server address.

On a phone these belong to the system or the app build, so wiping the app keeps them. The
reference app keeps them in a small JSON file next to its data directory (``--device-file``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def write_json_atomic(path: Path, data: dict[str, Any], mode: int = 0o600) -> None:
    """Write ``data`` as JSON through a temporary file, fsync and rename, so a crash never
    leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object file; a missing file is an empty object."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not contain a JSON object")
    return data


class DeviceState:
    """The device file: a JSON object written atomically on every change."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._data = read_json(path)

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._data.get(key, default)

    def update(self, **values: Any) -> None:
        with self._lock:
            self._data.update(values)
            write_json_atomic(self.path, self._data)
