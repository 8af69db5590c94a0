"""App settings kept in the data directory (``settings.json``): account and backup state.

The recovery key is not here; it lives in the key store (``keystore.py``).
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from reference_app.device import read_json, write_json_atomic

# Default daily backup slot, device-local time (Signal-Android BACKUP_DEFAULT_HOUR/MINUTE).
DEFAULT_BACKUP_HOUR = 2
DEFAULT_BACKUP_MINUTE = 0


@dataclass
class Account:
    aci: str
    e164: str
    device_id: int = 1
    password: str = ""

    def __repr__(self) -> str:
        return f"Account(aci={self.aci!r}, device_id={self.device_id})"


@dataclass
class BackupSettings:
    enabled: bool = False
    tier: str = "free"
    hour: int = DEFAULT_BACKUP_HOUR
    minute: int = DEFAULT_BACKUP_MINUTE
    next_backup_ms: int | None = None
    last_backup_ms: int | None = None
    last_refresh_ms: int | None = None
    last_media_prune_ms: int | None = None
    initialized: bool = False
    error: str | None = None
    downgraded: bool = False
    # Local path and creation time of the last exported archive (reused within an hour).
    export_file: str | None = None
    export_created_ms: int | None = None
    export_backup_time_ms: int | None = None


@dataclass
class Settings:
    account: Account | None = None
    backups: BackupSettings = field(default_factory=BackupSettings)
    restore_pending: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "account": asdict(self.account) if self.account else None,
            "backups": asdict(self.backups),
            "restore_pending": self.restore_pending,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Settings:
        account = data.get("account")
        backups = data.get("backups") or {}
        known = {f.name for f in fields(BackupSettings)}
        return cls(
            account=Account(**account) if account else None,
            backups=BackupSettings(**{k: v for k, v in backups.items() if k in known}),
            restore_pending=bool(data.get("restore_pending", False)),
        )


class SettingsFile:
    """Load, change and save ``settings.json`` under one lock."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.RLock()
        self.value = Settings.from_json(read_json(path))

    def save(self) -> None:
        with self.lock:
            write_json_atomic(self.path, self.value.to_json())
