"""Resumable uploads to the CDN over TUS 1.0.0, the way Signal's Android client does them.

Flow for one upload form (the descriptor returned by ``GET /v1/archives/upload/form`` or
``/media/upload/form``):

1. ``POST <signedUploadLocation>`` with the form headers, ``Content-Length: 0``,
   ``Upload-Defer-Length: 1`` and ``Tus-Resumable: 1.0.0``. The CDN returns 201 with
   ``Location``.
2. ``HEAD <Location>`` returns the ``Upload-Offset`` the CDN already holds.
3. ``PATCH <Location>`` with ``Upload-Offset``, ``Upload-Length`` (the total) and the bytes
   from that offset; the CDN returns 204 with the new offset.

After a dropped connection, a 409 (offset conflict) or a 5xx during step 2 or 3, the client
goes back to step 2 and resumes from the offset the CDN reports, at most
``max_resume_attempts`` times. Any other error status is raised at once.

Like Android, the client keeps only the path of the form's location and swaps in the scheme,
host and port of its own configured CDN URL, so the host inside the form does not matter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests

from reference_app.errors import ArchiveApiError, InvalidResponse, ServerUnreachable, UploadFailed
from reference_app.http_api import Timeouts, new_session, send

log = logging.getLogger(__name__)

TUS_VERSION = "1.0.0"
PATCH_CONTENT_TYPE = "application/offset+octet-stream"
DEFAULT_MAX_RESUME_ATTEMPTS = 3
# Wait before resume n is n times this, so the CDN can notice the dropped connection first.
DEFAULT_RESUME_BACKOFF_SECONDS = 0.2


@dataclass(frozen=True)
class UploadForm:
    """An upload descriptor: the CDN number, the object key, headers to send and where to POST."""

    cdn: int
    key: str
    headers: dict[str, str]
    signed_upload_location: str

    def __repr__(self) -> str:
        # The headers contain a bearer token for the CDN.
        return f"UploadForm(cdn={self.cdn}, key={self.key!r}, location={self.signed_upload_location!r})"

    @classmethod
    def from_json(cls, body: dict[str, Any], route: str) -> UploadForm:
        """Parse ``{cdn, key, headers, signedUploadLocation}``; a wrong shape raises InvalidResponse."""
        cdn, key = body.get("cdn"), body.get("key")
        headers, location = body.get("headers"), body.get("signedUploadLocation")
        if not isinstance(cdn, int) or not isinstance(key, str) or not key:
            raise InvalidResponse(route, "missing or invalid cdn or key")
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise InvalidResponse(route, "headers must be an object of strings")
        if not isinstance(location, str) or not location:
            raise InvalidResponse(route, "missing signedUploadLocation")
        return cls(cdn=cdn, key=key, headers=dict(headers), signed_upload_location=location)


@dataclass(frozen=True)
class UploadResult:
    """A finished upload: where it lives on the CDN and how many bytes it has."""

    cdn: int
    key: str
    location: str
    length: int


class UploadSource:
    """The bytes to upload, from memory or from a file, readable from any offset."""

    def __init__(self, data: bytes | Path):
        self._data = data
        self.length = len(data) if isinstance(data, bytes | bytearray) else Path(data).stat().st_size

    @contextmanager
    def open_at(self, offset: int, limit: int | None) -> Iterator[tuple[bytes | IO[bytes], int]]:
        """Yield (body, size) for the bytes from ``offset``, at most ``limit`` of them."""
        end = self.length if limit is None else min(self.length, offset + limit)
        size = end - offset
        if isinstance(self._data, bytes | bytearray):
            yield bytes(self._data[offset:end]), size
            return
        with open(self._data, "rb") as stream:
            stream.seek(offset)
            if limit is None:
                yield stream, size
            else:
                yield stream.read(size), size


class TusClient:
    """Uploads through TUS to the CDN configured at ``cdn_url`` (scheme, host and port)."""

    def __init__(
        self,
        cdn_url: str | None = None,
        *,
        timeouts: Timeouts | None = None,
        session: requests.Session | None = None,
        max_resume_attempts: int = DEFAULT_MAX_RESUME_ATTEMPTS,
        resume_backoff_seconds: float = DEFAULT_RESUME_BACKOFF_SECONDS,
        chunk_size: int | None = None,
    ):
        """``chunk_size`` None sends the rest of the file in one PATCH, as Android does."""
        self._cdn_url = cdn_url
        self._timeouts = timeouts or Timeouts()
        self._session = session or new_session()
        self._max_resume_attempts = max_resume_attempts
        self._resume_backoff_seconds = resume_backoff_seconds
        self._chunk_size = chunk_size

    def upload(self, form: UploadForm, data: bytes | Path) -> UploadResult:
        """Create the upload, then append until the CDN has every byte."""
        source = UploadSource(data)
        location = self.create(form)
        failures = 0
        while True:
            try:
                self._append_all(form, location, source)
                break
            except (ServerUnreachable, ArchiveApiError) as error:
                if not _resumable(error):
                    raise
                failures += 1
                if failures > self._max_resume_attempts:
                    raise UploadFailed(
                        f"upload of {form.key} failed after {failures} attempts: {error}"
                    ) from None
                log.warning("upload of %s interrupted (%s); resuming, attempt %d", form.key, error, failures + 1)
                time.sleep(self._resume_backoff_seconds * failures)
        log.info("uploaded %d bytes to cdn %d key %s", source.length, form.cdn, form.key)
        return UploadResult(cdn=form.cdn, key=form.key, location=location, length=source.length)

    def create(self, form: UploadForm) -> str:
        """POST an upload creation with a deferred length and return the upload URL."""
        url = self.resolve(form.signed_upload_location)
        headers = {
            **form.headers,
            "Tus-Resumable": TUS_VERSION,
            "Upload-Defer-Length": "1",
            "Content-Length": "0",
        }
        route = f"POST {urlsplit(url).path}"
        response = send(self._session, "POST", url, route, expected=(201,), timeouts=self._timeouts, headers=headers, data=b"")
        location = response.headers.get("Location")
        if not location:
            raise InvalidResponse(route, "201 without a Location header")
        return self.resolve(urljoin(url, location))

    def offset(self, form: UploadForm, location: str) -> int:
        """HEAD the upload and return the CDN's ``Upload-Offset``."""
        route = f"HEAD {urlsplit(location).path}"
        headers = {**form.headers, "Tus-Resumable": TUS_VERSION}
        response = send(self._session, "HEAD", location, route, expected=(200, 204), timeouts=self._timeouts, headers=headers)
        return _header_int(response, "Upload-Offset", route)

    def append(self, form: UploadForm, location: str, source: UploadSource, offset: int) -> int:
        """PATCH the bytes from ``offset`` (up to one chunk) and return the new offset."""
        route = f"PATCH {urlsplit(location).path}"
        with source.open_at(offset, self._chunk_size) as (body, size):
            headers = {
                **form.headers,
                "Tus-Resumable": TUS_VERSION,
                "Upload-Offset": str(offset),
                "Upload-Length": str(source.length),
                "Content-Type": PATCH_CONTENT_TYPE,
                "Content-Length": str(size),
            }
            response = send(
                self._session, "PATCH", location, route, expected=(204, 200), timeouts=self._timeouts, headers=headers, data=body
            )
        new_offset = _header_int(response, "Upload-Offset", route)
        if not offset < new_offset <= source.length and not (source.length == 0 and new_offset == 0):
            raise InvalidResponse(route, f"Upload-Offset {new_offset} after sending bytes {offset}..{offset + size}")
        return new_offset

    def resolve(self, url: str) -> str:
        """Keep the path and query of ``url`` but use the configured CDN scheme, host and port."""
        if not self._cdn_url:
            return url
        configured = urlsplit(self._cdn_url)
        given = urlsplit(url)
        return urlunsplit((configured.scheme, configured.netloc, given.path, given.query, ""))

    def _append_all(self, form: UploadForm, location: str, source: UploadSource) -> None:
        # NOTE: a connection that drops after the CDN stored the last byte leaves a finished
        # upload, so this HEAD gets 404 (NotFound). The caller then retries the whole upload.
        offset = self.offset(form, location)
        if source.length == 0 and offset == 0:
            self.append(form, location, source, 0)
            return
        while offset < source.length:
            offset = self.append(form, location, source, offset)
            log.info("upload of %s: %d of %d bytes", form.key, offset, source.length)


def _resumable(error: Exception) -> bool:
    if isinstance(error, ServerUnreachable):
        return True
    return isinstance(error, ArchiveApiError) and (error.status == 409 or error.status >= 500)


def _header_int(response: requests.Response, name: str, route: str) -> int:
    value = response.headers.get(name, "")
    if not value.isdigit():
        raise InvalidResponse(route, f"missing or invalid {name} header: {value!r}")
    return int(value)
