"""HS256 tokens that the archive API hands out and the CDN routes check.

Claims follow Signal's cdn3 setup: ``aud`` is the bucket (``backups`` or ``attachments``),
``sub`` the object key or backup directory, ``scope`` ``write`` or ``read`` (backups only),
``maxLen`` the largest upload allowed, ``iat`` the issue time. A token is valid for
``cdn_token_max_age_seconds`` after ``iat`` by the stub clock.
"""

from __future__ import annotations

from typing import Any

import jwt

from server_stub.clock import Clock
from server_stub.errors import StubError

CLOCK_SKEW_SECONDS = 60


class CdnTokens:
    def __init__(self, secret: bytes, clock: Clock, max_age_seconds: int):
        self._secret = secret
        self._clock = clock
        self._max_age = max_age_seconds

    def __repr__(self) -> str:
        return "CdnTokens(<secret hidden>)"

    def issue(self, audience: str, subject: str, scope: str | None = None, max_len: int | None = None) -> str:
        claims: dict[str, Any] = {"aud": audience, "sub": subject, "iat": int(self._clock.now())}
        if scope is not None:
            claims["scope"] = scope
        if max_len is not None:
            claims["maxLen"] = max_len
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def authorization(self, audience: str, subject: str, scope: str | None = None, max_len: int | None = None) -> str:
        return f"Bearer {self.issue(audience, subject, scope, max_len)}"

    def verify(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """Check an ``Authorization: Bearer`` header; raise StubError 400 or 401."""
        if not authorization:
            raise StubError(401, "missing Authorization header; send the Bearer token from the form")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise StubError(400, "Authorization must use the Bearer scheme")
        try:
            claims = jwt.decode(
                token.strip(),
                self._secret,
                algorithms=["HS256"],
                audience=audience,
                options={"verify_iat": False, "verify_exp": False, "verify_nbf": False, "require": ["iat", "sub"]},
            )
        except jwt.PyJWTError as error:
            raise StubError(401, f"invalid CDN token: {error}") from None
        issued_at = claims.get("iat")
        now = self._clock.now()
        if not isinstance(issued_at, int | float) or issued_at > now + CLOCK_SKEW_SECONDS:
            raise StubError(401, "invalid CDN token: issued in the future")
        if now - issued_at > self._max_age:
            raise StubError(401, "CDN token expired; ask the archive API for a new form")
        return claims
