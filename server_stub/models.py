"""JSON bodies of the archive API, with upstream's field names and validation outcomes.

Byte fields are standard padded base64, and invalid base64 is 400, as Jackson reports it.
``mediaId`` is URL-safe base64 of exactly 15 bytes. A missing field or a broken constraint is
422. Integers are strict, so a string where a number belongs is 400.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, WithJsonSchema
from pydantic_core import PydanticCustomError

MEDIA_ID_LENGTH = 15
KEY_LENGTH = 32
MAX_BATCH = 1000
URLSAFE = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def _standard_base64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "expected a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise PydanticCustomError("base64_decode", "invalid standard base64") from None


def _key_32(value: Any) -> bytes:
    decoded = _standard_base64(value)
    if len(decoded) != KEY_LENGTH:
        raise PydanticCustomError("value_error", "must be exactly 32 bytes, got {size}", {"size": len(decoded)})
    return decoded


def _media_id(value: Any) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "expected a URL-safe base64 string")
    try:
        if not URLSAFE.fullmatch(value):
            raise ValueError
        decoded = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise PydanticCustomError("value_error", "mediaId is not URL-safe base64") from None
    if len(decoded) != MEDIA_ID_LENGTH:
        raise PydanticCustomError("value_error", "mediaId must be 15 bytes, got {size}", {"size": len(decoded)})
    return base64.urlsafe_b64encode(decoded).decode("ascii").rstrip("=")


def _transit_key(value: Any) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "expected a URL-safe base64 string")
    if not value or len(value) > 64 or not URLSAFE.fullmatch(value):
        raise PydanticCustomError("value_error", "key must be 1-64 characters of URL-safe base64")
    return value


Base64Bytes = Annotated[
    bytes, BeforeValidator(_standard_base64), WithJsonSchema({"type": "string", "format": "byte"})
]
Key32 = Annotated[
    bytes,
    BeforeValidator(_key_32),
    WithJsonSchema({"type": "string", "format": "byte", "description": "32 bytes, standard base64"}),
]
MediaId = Annotated[
    str,
    BeforeValidator(_media_id),
    WithJsonSchema({"type": "string", "description": "15 bytes, URL-safe base64 without padding"}),
]
TransitKey = Annotated[str, BeforeValidator(_transit_key), WithJsonSchema({"type": "string", "maxLength": 64})]


class StubModel(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SetBackupIdRequest(StubModel):
    messagesBackupAuthCredentialRequest: Base64Bytes | None = None
    mediaBackupAuthCredentialRequest: Base64Bytes | None = None


class SetPublicKeyRequest(StubModel):
    backupIdPublicKey: Base64Bytes


class RedeemReceiptRequest(StubModel):
    receiptCredentialPresentation: Base64Bytes


class SourceAttachment(StubModel):
    cdn: StrictInt
    key: TransitKey


class CopyMediaRequest(StubModel):
    sourceAttachment: SourceAttachment
    objectLength: StrictInt = Field(ge=0)
    mediaId: MediaId
    hmacKey: Key32
    encryptionKey: Key32


class CopyMediaBatchRequest(StubModel):
    items: list[CopyMediaRequest] = Field(min_length=1, max_length=MAX_BATCH)


class MediaToDelete(StubModel):
    cdn: StrictInt
    mediaId: MediaId


class DeleteMediaRequest(StubModel):
    mediaToDelete: list[MediaToDelete] = Field(min_length=1, max_length=MAX_BATCH)


# -- responses (documentation of the shapes in the OpenAPI document) --------------------


class CredentialEntry(BaseModel):
    credential: str
    redemptionTime: int


class CredentialsByType(BaseModel):
    messages: list[CredentialEntry]
    media: list[CredentialEntry]


class CredentialsResponse(BaseModel):
    credentials: CredentialsByType


class LimitsResponse(BaseModel):
    hasPermitsRemaining: bool
    retryAfterSeconds: int


class BackupInfoResponse(BaseModel):
    cdn: int
    backupDir: str
    mediaDir: str
    backupName: str
    usedSpace: int


class UploadFormResponse(BaseModel):
    cdn: int
    key: str
    headers: dict[str, str]
    signedUploadLocation: str


class ReadAuthResponse(BaseModel):
    headers: dict[str, str]


class SvrbResponse(BaseModel):
    username: str
    password: str


class CopyMediaResponse(BaseModel):
    cdn: int


class CopyOutcome(BaseModel):
    status: int
    failureReason: str | None
    cdn: int | None
    mediaId: str


class CopyMediaBatchResponse(BaseModel):
    responses: list[CopyOutcome]


class StoredMediaObject(BaseModel):
    cdn: int
    mediaId: str
    objectLength: int


class ListMediaResponse(BaseModel):
    storedMediaObjects: list[StoredMediaObject]
    backupDir: str
    mediaDir: str
    cursor: str | None


class ErrorResponse(BaseModel):
    code: int
    message: str
