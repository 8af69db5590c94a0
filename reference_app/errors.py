"""Errors the reference app shows to its user (the app is the system under test, not the harness).

Each message is one line: what failed, on which route or value, and what to do next. Messages
never contain a recovery key, a backup key, a credential or a password. The app turns these
into visible error text, so the harness can check how the app behaves. They do not derive from
``harness.errors`` because an app failure is not an infrastructure failure.
"""

from __future__ import annotations


class AppError(Exception):
    """Base class of every error the reference app reports to its user."""


class ServerUnreachable(AppError):
    """The archive server or CDN sent no response (connection refused, reset or timed out)."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"cannot reach the backup server at {url}: {reason}; check that it is running")
        self.url = url
        self.reason = reason


class ArchiveApiError(AppError):
    """The archive API or CDN returned an error status.

    ``route`` is the method and path template (``"PUT /v1/archives/keys"``), never a URL with
    secrets in its query.
    """

    def __init__(self, status: int, route: str, detail: str | None = None):
        message = f"{route} failed with HTTP {status}"
        if detail:
            message += f": {detail}"
        super().__init__(message)
        self.status = status
        self.route = route
        self.detail = detail


class Unauthorized(ArchiveApiError):
    """401: the credential, presentation or signature was not accepted."""


class Forbidden(ArchiveApiError):
    """403: the credential level is too low (a media call on the free tier) or not a primary device."""


class NotFound(ArchiveApiError):
    """404: no stored credential request, no upload, or no object at that path."""


class PayloadTooLarge(ArchiveApiError):
    """413: the upload exceeds the allowed size, or the media quota is used up."""


class RateLimited(ArchiveApiError):
    """429: rate limited. ``retry_after`` is the server's Retry-After in seconds, or None."""

    def __init__(self, status: int, route: str, detail: str | None = None, retry_after: int | None = None):
        super().__init__(status, route, detail)
        self.retry_after = retry_after
        if retry_after is not None:
            self.args = (f"{self.args[0]}; retry after {retry_after} s",)


class InvalidResponse(AppError):
    """The server returned a success status but a body the client cannot use."""

    def __init__(self, route: str, problem: str):
        super().__init__(f"{route} returned an invalid response: {problem}")
        self.route = route
        self.problem = problem


class CredentialVerificationFailed(AppError):
    """Unblinding the issued backup credentials failed.

    The usual cause is a backup key (recovery key) that does not match the credential requests
    committed for this account. The cached credentials are cleared when this is raised.
    """


class CorruptMedia(AppError):
    """A downloaded media tier object failed its MAC or padding check."""


class UploadFailed(AppError):
    """A TUS upload could not be completed after its resume attempts."""
