"""Settings of the stub backup server, in one place.

Defaults follow Signal-Server's code and sample configuration where those are public. Values
that upstream takes from deployment configuration are guesses and say so. Every field can be
overridden by a JSON file (``--config FILE``) whose keys are the field names below.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.errors import UsageError

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
DAY = 86400

LEVEL_FREE = 200
LEVEL_PAID = 201


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: ``bucket_size`` permits, one regained every ``regen_seconds``."""

    bucket_size: float
    regen_seconds: float


def default_rate_limits() -> dict[str, RateLimit]:
    # Bucket sizes and regeneration times of Signal-Server's RateLimiters for these names.
    return {
        "setBackupId": RateLimit(10, 3600),
        "setPaidMediaBackupId": RateLimit(5, 7 * DAY),
        "backupAttachmentCreate": RateLimit(10_000, 1),
        "attachmentCreate": RateLimit(50, 1.2),
        # One permit per byte, 10^9 bytes, one byte regained every microsecond.
        "attachmentCreateBytes": RateLimit(1_000_000_000, 0.000001),
    }


@dataclass
class StubConfig:
    """Everything the stub server reads at start; see the module docstring for overrides."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    admin_host: str = "127.0.0.1"
    admin_port: int = 0
    tls: bool = False
    # Base URL written into upload forms; None means "the URL the client used for the form".
    public_url: str | None = None

    # Upstream reads both maxima from deployment configuration. Its sample config says 1024
    # bytes for message backups, a placeholder, so these defaults are guesses.
    max_message_backup_bytes: int = GIB
    max_attachment_bytes: int = 100 * MIB
    # Limit for every request body that is not a TUS upload (JSON bodies of the archive API).
    max_json_body_bytes: int = MIB

    # NOTE: upstream's TTL is disputed: the refresh endpoint's API text says 30 days and the
    # expiration worker's code default grace period is 120 days. 30 days follows the API text.
    backup_grace_days: int = 30
    media_grace_days: int = 30
    # Served as backup.freeTierMediaDays; transit attachments older than this are expired.
    # Signal's blog and iOS's fallback say 45; the sample server config says 30.
    free_tier_media_days: int = 45
    media_ttl_days: int = 30
    media_quota_bytes: int = 100 * GIB
    play_product_id: str = "backup"

    cdn_token_max_age_seconds: int = 7 * DAY
    tus_upload_expiry_seconds: int = 7 * DAY
    # Level of accounts registered without one; upstream gives FREE unless the account is in
    # the `backupMedia` experiment or has a paid voucher.
    default_backup_level: int = LEVEL_FREE
    # Source CDN numbers the transit-to-media copy accepts (the stub's CDN serves as cdn 3).
    copy_source_cdns: tuple[int, ...] = (3,)
    media_list_default_limit: int = 1000

    # Seconds between runs of the expiration worker; 0 leaves it to the admin API.
    expiry_interval_seconds: float = 600.0
    # Response bodies up to this size are kept with the recording (request bodies always are).
    store_response_bodies_up_to: int = 64 * KIB
    rate_limits: dict[str, RateLimit] = field(default_factory=default_rate_limits)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.copy_source_cdns = tuple(self.copy_source_cdns)
        if not _is_loopback(self.admin_host):
            raise UsageError(
                f"admin host {self.admin_host!r} is not a loopback address; the admin API "
                "listens on 127.0.0.1 or ::1 only"
            )
        if self.default_backup_level not in (LEVEL_FREE, LEVEL_PAID):
            raise UsageError(
                f"default_backup_level {self.default_backup_level!r} is invalid; use 200 (free) or 201 (paid)"
            )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["data_dir"] = str(self.data_dir)
        data["copy_source_cdns"] = list(self.copy_source_cdns)
        return data


def load_overrides(path: Path) -> dict[str, Any]:
    """Read a JSON config file and check its keys against StubConfig's fields."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"config file {path} not found; pass an existing JSON file") from None
    except (OSError, json.JSONDecodeError) as error:
        raise UsageError(f"config file {path} is not readable JSON: {error}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a JSON object of setting names")
    known = {item.name for item in fields(StubConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(f"config file {path} has unknown settings: {', '.join(unknown)}")
    if "rate_limits" in data:
        data["rate_limits"] = _parse_rate_limits(path, data["rate_limits"])
    return data


def _parse_rate_limits(path: Path, raw: Any) -> dict[str, RateLimit]:
    limits = default_rate_limits()
    if not isinstance(raw, dict):
        raise UsageError(f"config file {path}: rate_limits must be an object of name -> limit")
    for name, value in raw.items():
        if name not in limits:
            raise UsageError(f"config file {path}: unknown rate limit {name!r}; known: {', '.join(limits)}")
        try:
            limits[name] = RateLimit(float(value["bucket_size"]), float(value["regen_seconds"]))
        except (KeyError, TypeError, ValueError):
            raise UsageError(
                f"config file {path}: rate limit {name!r} needs numeric bucket_size and regen_seconds"
            ) from None
    return limits


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
