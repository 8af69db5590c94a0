"""Parsers for the archive API's JSON responses.

Each parser checks the shape it needs and raises ``InvalidResponse`` naming the route and the
problem, so a malformed server response becomes a visible app error instead of a KeyError.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from reference_app.archive_credentials import DAY_SECONDS, TYPE_NAMES
from reference_app.errors import InvalidResponse
from reference_app.media_copy import CopyMediaRequest, CopyResult, MediaPage, StoredMedia, decode_media_id


@dataclass(frozen=True)
class BackupInfo:
    """``GET /v1/archives``: where the backup lives on the CDN and the media bytes used."""

    cdn: int
    backup_dir: str
    media_dir: str
    backup_name: str
    used_space: int


@dataclass(frozen=True)
class BackupLevelConfiguration:
    storage_allowance_bytes: int | None
    media_ttl_days: int | None
    play_product_id: str | None


@dataclass(frozen=True)
class BackupConfiguration:
    """The ``backup`` part of ``GET /v1/subscription/configuration``."""

    levels: dict[int, BackupLevelConfiguration]
    free_tier_media_days: int | None


def issued_credentials(body: dict[str, Any], route: str, start: int, end: int) -> dict[int, dict[int, bytes]]:
    """Parse ``{"credentials": {"messages": [...], "media": [...]}}`` into type -> day -> response.

    Each redemption time must be a UTC midnight inside the requested window, because the
    client only accepts credentials it asked for.
    """
    credentials = body.get("credentials")
    if not isinstance(credentials, dict):
        raise InvalidResponse(route, "missing credentials object")
    issued: dict[int, dict[int, bytes]] = {}
    for credential_type, name in TYPE_NAMES.items():
        entries = credentials.get(name)
        if not isinstance(entries, list) or not entries:
            raise InvalidResponse(route, f"missing credentials.{name}")
        issued[credential_type] = {}
        for entry in entries:
            try:
                day = int(entry["redemptionTime"])
                response = base64.b64decode(entry["credential"], validate=True)
            except (KeyError, TypeError, ValueError):
                raise InvalidResponse(route, f"invalid entry in credentials.{name}") from None
            if day % DAY_SECONDS or not start <= day <= end:
                raise InvalidResponse(route, f"redemptionTime {day} is not a UTC day in {start}..{end}")
            issued[credential_type][day] = response
    return issued


def copy_result(entry: Any, request: CopyMediaRequest, route: str) -> CopyResult:
    if not isinstance(entry, dict) or not isinstance(entry.get("status"), int):
        raise InvalidResponse(route, "a batch response entry has no status")
    media_id = request.media_id
    if isinstance(entry.get("mediaId"), str):
        try:
            media_id = decode_media_id(entry["mediaId"])
        except ValueError as error:
            raise InvalidResponse(route, str(error)) from None
    cdn = entry.get("cdn")
    reason = entry.get("failureReason")
    return CopyResult(
        media_id=media_id,
        status=entry["status"],
        cdn=cdn if isinstance(cdn, int) else None,
        failure_reason=reason if isinstance(reason, str) else None,
    )


def media_page(body: dict[str, Any], route: str) -> MediaPage:
    try:
        objects = tuple(
            StoredMedia(cdn=int(item["cdn"]), media_id=decode_media_id(item["mediaId"]), object_length=int(item["objectLength"]))
            for item in body.get("storedMediaObjects") or []
        )
        cursor = body.get("cursor")
        return MediaPage(
            objects=objects,
            backup_dir=str(body["backupDir"]),
            media_dir=str(body["mediaDir"]),
            cursor=cursor if isinstance(cursor, str) and cursor else None,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidResponse(route, f"invalid media listing: {error}") from None


def backup_configuration(body: dict[str, Any], route: str) -> BackupConfiguration:
    backup = body.get("backup")
    if not isinstance(backup, dict):
        raise InvalidResponse(route, "missing backup object")
    levels: dict[int, BackupLevelConfiguration] = {}
    try:
        for level, values in (backup.get("levels") or {}).items():
            levels[int(level)] = BackupLevelConfiguration(
                storage_allowance_bytes=_optional_int(values.get("storageAllowanceBytes")),
                media_ttl_days=_optional_int(values.get("mediaTtlDays")),
                play_product_id=values.get("playProductId"),
            )
        free_days = _optional_int(backup.get("freeTierMediaDays"))
    except (AttributeError, TypeError, ValueError) as error:
        raise InvalidResponse(route, f"invalid backup levels: {error}") from None
    return BackupConfiguration(levels=levels, free_tier_media_days=free_days)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def backup_info(body: dict[str, Any], route: str) -> BackupInfo:
    try:
        return BackupInfo(
            cdn=int(body["cdn"]),
            backup_dir=str(body["backupDir"]),
            media_dir=str(body["mediaDir"]),
            backup_name=str(body["backupName"]),
            used_space=int(body.get("usedSpace") or 0),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidResponse(route, f"missing or invalid field {error}") from None
