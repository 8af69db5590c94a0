"""The one interface the suite uses to drive any target: the reference app or an Android device.

A target is seen only the way a phone is seen: through user actions, the network (the stub
server), its log (logcat or the reference app's log) and its files. Nothing here may import
the app's internals.

Contract for every implementation:

* Device and transport problems (a missing device, a dead app process, a timed-out control
  request) raise ``InfrastructureError`` subclasses, never ``AssertionError``, so a report
  never shows an infrastructure failure as a failed backup check.
* A user-visible failure of the app (a wrong recovery key on restore, an upload that failed)
  is returned as data (``RestoreResult.ok`` is false, ``BackupResult.ok`` is false), because
  the suite checks those outcomes.
* Waiting is event-based: ``back_up_now`` returns when the app reports the upload finished or
  failed, or raises ``InfrastructureError`` when the timeout passes with neither.
* The recovery key is a secret: implementations never log it and never put it in artifacts.
"""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path
from typing import Any

from harness.errors import UsageError


class ActionRejectedError(UsageError):
    """The app refused a user action, as its screen would show an error (an unknown chat,
    backups turned off, a malformed request). ``status`` and ``code`` come from the target."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


@dataclasses.dataclass(frozen=True)
class StubEndpoints:
    """Where the app under test finds the backup service.

    ``url`` is the app-facing base URL (archive API and CDN); ``zk_public_params`` is the
    base64 GenericServerPublicParams the app must trust for backup credentials.
    """

    url: str
    zk_public_params: str
    ca_certificate: Path | None = None


@dataclasses.dataclass(frozen=True)
class Account:
    """A registered account of the app under test."""

    aci: str
    e164: str
    device_id: int = 1
    password: str = ""


@dataclasses.dataclass(frozen=True)
class LogPosition:
    """An opaque position in the target's log; ``read_log`` returns lines after it."""

    offset: int


@dataclasses.dataclass(frozen=True)
class LogLine:
    position: LogPosition
    text: str


@dataclasses.dataclass(frozen=True)
class BackupResult:
    """Outcome of one backup run as the app reports it."""

    ok: bool
    backup_time_ms: int | None = None
    archive_size: int | None = None
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class RestoreResult:
    """Outcome of a restore as the app shows it. ``error`` is the text the user would see."""

    ok: bool
    error: str | None = None
    error_kind: str | None = None  # "invalid-key", "incorrect-key", "corrupt", "missing", ...


@dataclasses.dataclass(frozen=True)
class VisibleAttachment:
    file_name: str | None
    content_type: str | None
    size: int
    available: bool  # the bytes can be shown (downloaded or restorable)
    sha256: str | None = None


@dataclasses.dataclass(frozen=True)
class VisibleMessage:
    """One message as the chat screen shows it."""

    chat: str  # the chat's title: the contact's or group's name
    author: str
    direction: str  # "incoming", "outgoing" or "update"
    sent_at_ms: int
    text: str | None
    view_once: bool = False
    expires_in_ms: int | None = None
    expire_start_ms: int | None = None
    attachments: tuple[VisibleAttachment, ...] = ()
    reactions: tuple[str, ...] = ()
    quote_text: str | None = None
    deleted: bool = False


@dataclasses.dataclass(frozen=True)
class BackupStatus:
    """The backup settings screen."""

    enabled: bool
    tier: str | None  # "free" or "paid"
    last_backup_ms: int | None
    next_backup_ms: int | None
    error: str | None
    backup_hour: int | None = None
    backup_minute: int | None = None


class Target(abc.ABC):
    """A device with the app under test installed."""

    name: str = "target"

    # Lifecycle -------------------------------------------------------------------------
    @abc.abstractmethod
    def install(self) -> None:
        """Install the app (a no-op where it is already installed)."""

    @abc.abstractmethod
    def start(self) -> None:
        """Start the app and wait until it accepts actions."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop the app. Safe to call when it is not running."""

    @abc.abstractmethod
    def wipe(self) -> None:
        """Erase all app data, as a new phone or a cleared app would be."""

    def close(self) -> None:
        """Release every resource the target holds (processes, ports, adb reversals)."""
        self.stop()

    # Setup -----------------------------------------------------------------------------
    @abc.abstractmethod
    def point_at(self, stub: StubEndpoints) -> None:
        """Configure the app to use this stub server for the archive API and the CDN."""

    @abc.abstractmethod
    def register_account(self, account: Account) -> None:
        """Register the app with this account (the stub accepts its account credentials)."""

    @abc.abstractmethod
    def load_scenario(self, scenario: dict[str, Any]) -> None:
        """Load conversation content from a validated scenario (see ``harness.scenario``)."""

    # Backups ---------------------------------------------------------------------------
    @abc.abstractmethod
    def enable_backups(self, tier: str = "free") -> str:
        """Turn backups on and return the recovery key exactly as the app displays it."""

    @abc.abstractmethod
    def back_up_now(self, timeout: float = 60.0) -> BackupResult:
        """Start a backup and wait for the app to report it finished or failed."""

    @abc.abstractmethod
    def backup_status(self) -> BackupStatus:
        """Read the backup settings screen."""

    @abc.abstractmethod
    def regenerate_recovery_key(self) -> str:
        """Create a new recovery key and return it as displayed."""

    @abc.abstractmethod
    def disable_backups(self) -> None:
        """Turn backups off (the app deletes its remote backup)."""

    @abc.abstractmethod
    def restore(self, recovery_key_entry: str, timeout: float = 60.0) -> RestoreResult:
        """Restore from the remote backup with a recovery key typed as the user would."""

    # Clock -----------------------------------------------------------------------------
    @abc.abstractmethod
    def clock_ms(self) -> int:
        """Return the device clock in milliseconds since the epoch."""

    @abc.abstractmethod
    def set_clock(self, epoch_ms: int, timezone: str | None = None) -> None:
        """Set the device clock (and optionally its IANA time zone)."""

    @abc.abstractmethod
    def advance_clock(self, delta_ms: int) -> None:
        """Move the device clock forward; jobs that fall due (the daily backup) then run."""

    # Observation -----------------------------------------------------------------------
    @abc.abstractmethod
    def visible_messages(self) -> list[VisibleMessage]:
        """Read every message of every chat as the screens show them."""

    @abc.abstractmethod
    def log_position(self) -> LogPosition:
        """Return the current end of the app log."""

    @abc.abstractmethod
    def read_log(self, since: LogPosition | None = None) -> list[LogLine]:
        """Return the log lines written after ``since`` (all lines when it is None)."""

    @abc.abstractmethod
    def wait_for_log(self, pattern: str, since: LogPosition, timeout: float) -> LogLine:
        """Wait until a log line after ``since`` matches the regular expression ``pattern``."""

    @abc.abstractmethod
    def snapshot_files(self, destination: Path) -> Path:
        """Copy the app's data files into ``destination`` and return that folder."""

    @abc.abstractmethod
    def message_store_paths(self) -> list[str]:
        """Return the relative paths inside a file snapshot that form the message store.

        The leak scan skips these: the message store legitimately holds message text.
        """

    def key_store_paths(self) -> list[str]:
        """Return the relative paths inside a file snapshot where the app keeps its key material.

        The recovery-key leak scan skips these. By default the list is empty, so every file is scanned.
        """
        return []

    def capture_artifacts(self, destination: Path) -> None:
        """Save what helps debug a failed test (log excerpt, screenshot, files)."""
        destination.mkdir(parents=True, exist_ok=True)
