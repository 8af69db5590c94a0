"""HTTP plumbing shared by the archive client and the TUS client: sessions, timeouts, and the
mapping from status codes and connection failures to the app's typed errors."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from reference_app.errors import (
    ArchiveApiError,
    Forbidden,
    InvalidResponse,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerUnreachable,
    Unauthorized,
)

log = logging.getLogger(__name__)

_ERRORS_BY_STATUS: dict[int, type[ArchiveApiError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    413: PayloadTooLarge,
}
_MAX_DETAIL_CHARS = 200


@dataclass(frozen=True)
class Timeouts:
    """Connect and read timeouts in seconds, kept apart so a slow upload is not a dead server."""

    connect: float = 5.0
    read: float = 30.0

    def as_requests(self) -> tuple[float, float]:
        return (self.connect, self.read)


def new_session() -> requests.Session:
    """Create a session that ignores proxy variables and ``.netrc``.

    ``trust_env`` is off so loopback traffic never goes through a proxy and no stray
    credentials from the environment are attached to an anonymous request.
    """
    session = requests.Session()
    session.trust_env = False
    return session


def origin(url: str) -> str:
    """Return scheme://host:port of ``url``, the part that is safe to show in an error."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def send(
    session: requests.Session,
    method: str,
    url: str,
    route: str,
    *,
    expected: tuple[int, ...],
    timeouts: Timeouts,
    **kwargs: Any,
) -> requests.Response:
    """Send one request and return the response if its status is in ``expected``.

    Raises ServerUnreachable when no response arrives and an ArchiveApiError subclass for any
    other status. ``route`` names the request in logs and errors (method and path template).
    """
    try:
        response = session.request(method, url, timeout=timeouts.as_requests(), **kwargs)
    except requests.Timeout:
        log.warning("%s: timed out waiting for %s", route, origin(url))
        raise ServerUnreachable(origin(url), "timed out") from None
    except requests.ConnectionError as error:
        reason = _connection_reason(error)
        log.warning("%s: cannot connect to %s: %s", route, origin(url), reason)
        raise ServerUnreachable(origin(url), reason) from None
    log.debug("%s -> %d", route, response.status_code)
    if response.status_code not in expected:
        raise error_for(response, route)
    return response


def error_for(response: requests.Response, route: str) -> ArchiveApiError:
    """Build the typed error for an unexpected status."""
    status = response.status_code
    detail = _error_detail(response)
    log.info("%s failed with HTTP %d%s", route, status, f": {detail}" if detail else "")
    if status == 429:
        return RateLimited(status, route, detail, retry_after=_retry_after(response))
    error_type = _ERRORS_BY_STATUS.get(status, ArchiveApiError)
    return error_type(status, route, detail)


def json_object(response: requests.Response, route: str) -> dict[str, Any]:
    """Parse a JSON object body; anything else raises InvalidResponse."""
    try:
        body = response.json()
    except ValueError:
        raise InvalidResponse(route, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidResponse(route, f"expected a JSON object, got {type(body).__name__}")
    return body


def _error_detail(response: requests.Response) -> str | None:
    """Return the server's error message: ``message`` of a JSON error body, else the text."""
    text = ""
    try:
        body = response.json()
    except ValueError:
        text = response.text
    else:
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            text = body["message"]
    text = " ".join(text.split())
    return text[:_MAX_DETAIL_CHARS] or None


def _retry_after(response: requests.Response) -> int | None:
    value = response.headers.get("Retry-After", "").strip()
    return int(value) if value.isdigit() else None


def _connection_reason(error: requests.ConnectionError) -> str:
    text = str(error)
    for marker, reason in (
        ("Connection refused", "connection refused"),
        ("Connection reset", "connection reset"),
        ("Name or service not known", "host not found"),
        ("RemoteDisconnected", "connection closed without a response"),
    ):
        if marker in text:
            return reason
    return "connection failed"
