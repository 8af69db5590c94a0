"""Rules over the requests the stub server recorded: unlinkability and credential timing.

The stub classifies every request into a plane (``server_stub/ADMIN_API.md``): "account"
(the four account-authenticated archive routes and the transit attachment form), "archive"
(zero-knowledge routes under ``/v1/archives``), "cdn" (TUS uploads and downloads) and
"other". The rules here check what each plane may carry:

* archive and CDN requests carry nothing that names the account: no account ``Authorization``
  on archive routes, and no ACI, phone number, account password or ``<aci>.<device id>``
  login in any encoding anywhere in the request (path, query, headers, body);
* no request carries both account auth and zero-knowledge auth headers, and no CDN request
  carries the account's Basic auth;
* every zero-knowledge request carries a fresh credential presentation, because a repeated
  presentation links the requests that share it;
* account requests never contain a backup id (messages or media) in any encoding;
* credentials are fetched ahead of time: each ``GET /v1/archives/auth`` requests at least
  7 days, and no fetch happens while an earlier one still covers the current day.

Identifiers are searched as raw bytes, hex, and standard and URL-safe base64 at every byte
alignment, so an identifier inside a larger base64 value (a Basic auth header) is found too.
"""

from __future__ import annotations

import base64
import dataclasses
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from harness.model import Finding

DAY_SECONDS = 86_400
# Credential window: the client asks for today .. today + 7 days (Android ArchiveApi
# getServiceCredentials; Signal-Server issues at most 8 days per request).
CREDENTIAL_WINDOW_SECONDS = 7 * DAY_SECONDS
ZK_HEADERS = ("x-signal-zk-auth", "x-signal-zk-auth-signature")
AUTH_ROUTE = ("GET", "/v1/archives/auth")


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """One request as the stub recorded it (the JSON record of its admin API) plus its body."""

    id: int
    time: float  # stub clock, epoch seconds
    plane: str  # "account", "archive", "cdn" or "other"
    method: str
    path: str
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    status: int | None = None
    marker: str | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any], body: bytes = b"") -> RecordedRequest:
        return cls(
            id=int(record["id"]),
            time=float(record.get("time") or 0.0),
            plane=str(record.get("plane", "other")),
            method=str(record["method"]),
            path=str(record["path"]),
            query=str(record.get("query") or ""),
            headers=tuple((str(name), str(value)) for name, value in record.get("headers") or ()),
            body=body,
            status=record.get("status"),
            marker=record.get("marker"),
        )

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def location(self) -> str:
        return f"request #{self.id} {self.method} {self.path}"

    def query_values(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.query)

    def haystack(self) -> bytes:
        """Return every byte of the request that reaches a server or proxy, for identifier search."""
        head = f"{self.method} {self.path}?{self.query}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in self.headers)
        return head.encode("utf-8", "surrogateescape") + b"\r\n" + self.body


@dataclasses.dataclass(frozen=True)
class AccountIdentity:
    """Account identifiers that tie traffic to the account; archive-plane requests must not contain them."""

    aci: str
    e164: str
    device_id: int = 1
    password: str = ""


# Encodings ------------------------------------------------------------------------------


def base64_fragments(data: bytes) -> set[bytes]:
    """Return the base64 text of ``data`` at each of the three byte alignments, both alphabets.

    When ``data`` sits inside a larger value, its base64 form depends on its offset modulo 3,
    and the first and last characters mix in neighbouring bits. Each fragment keeps only the
    characters made of ``data``'s bits alone, so it is found wherever the value sits.
    """
    fragments: set[bytes] = set()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + data).rstrip(b"=")
        first = (offset * 8 + 5) // 6  # characters that contain bits of the prefix
        last = ((offset + len(data)) * 8) // 6  # end of the characters made of data bits only
        core = encoded[first:last]
        if len(core) >= 8:
            fragments.add(core)
            fragments.add(core.translate(bytes.maketrans(b"+/", b"-_")))
    return fragments


def binary_needles(label: str, data: bytes) -> dict[str, bytes]:
    """Return the encodings of a binary identifier: raw, hex (both cases), base64 fragments."""
    needles = {f"{label} (raw)": data, f"{label} (hex)": data.hex().encode()}
    needles[f"{label} (HEX)"] = data.hex().upper().encode()
    for index, fragment in enumerate(sorted(base64_fragments(data))):
        needles[f"{label} (base64 form {index + 1})"] = fragment
        quoted = urllib.parse.quote(fragment.decode(), safe="").encode()
        if quoted != fragment:
            needles[f"{label} (URL-encoded base64 form {index + 1})"] = quoted
    return needles


def text_needles(label: str, text: str) -> dict[str, bytes]:
    """Return the encodings of a text identifier: plain, upper case, URL-encoded, base64, UTF-16."""
    raw = text.encode("utf-8")
    needles = {
        f"{label} (plain)": raw,
        f"{label} (upper case)": text.upper().encode("utf-8"),
        f"{label} (URL-encoded)": urllib.parse.quote(text, safe="").encode(),
        f"{label} (UTF-16)": text.encode("utf-16-le"),
    }
    for index, fragment in enumerate(sorted(base64_fragments(raw))):
        needles[f"{label} (base64 form {index + 1})"] = fragment
    return needles


def account_needles(identity: AccountIdentity) -> dict[str, bytes]:
    """Return every encoding of the account's identifiers that archive traffic must not carry."""
    aci = uuid.UUID(identity.aci)
    needles: dict[str, bytes] = {}
    needles.update(text_needles("ACI", str(aci)))
    needles.update(binary_needles("ACI", aci.bytes))
    e164 = identity.e164
    needles.update(text_needles("phone number", e164))
    needles.update(text_needles("phone number digits", e164.lstrip("+")))
    needles.update(text_needles("device login", f"{aci}.{identity.device_id}"))
    if identity.password:
        needles.update(text_needles("account password", identity.password))
    return {label: needle for label, needle in needles.items() if needle}


def backup_id_needles(backup_ids: Mapping[str, bytes]) -> dict[str, bytes]:
    """Return every encoding of the backup ids, e.g. {"messages backup id": b"..."}."""
    needles: dict[str, bytes] = {}
    for label, backup_id in backup_ids.items():
        needles.update(binary_needles(label, backup_id))
    return needles


def find_needles(haystack: bytes, needles: Mapping[str, bytes]) -> list[str]:
    """Return the labels of the needles found in ``haystack``, one per distinct needle."""
    return [label for label, needle in needles.items() if needle in haystack]


# Rules ----------------------------------------------------------------------------------


def has_account_auth(request: RecordedRequest) -> bool:
    return request.header("authorization") is not None


def has_zk_auth(request: RecordedRequest) -> bool:
    return any(request.header(name) is not None for name in ZK_HEADERS)


def carries_account_login(request: RecordedRequest, identity: AccountIdentity) -> bool:
    """Return whether the Authorization header is Basic auth with the account's login."""
    value = request.header("authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8", "replace")
    except ValueError:
        return False
    user, _, password = decoded.partition(":")
    return user.split(".")[0].lower() == identity.aci.lower() or (bool(identity.password) and password == identity.password)


def check_archive_plane(
    requests: Iterable[RecordedRequest], identity: AccountIdentity
) -> list[Finding]:
    """Find archive-plane and CDN requests that carry account credentials or identifiers."""
    needles = account_needles(identity)
    findings = []
    for request in requests:
        if request.plane not in ("archive", "cdn"):
            continue
        if request.plane == "cdn" and carries_account_login(request, identity):
            findings.append(
                Finding(
                    "unlinkability.account-auth",
                    f"{request.location()}: CDN request sent with the account's Basic auth",
                    request.location(),
                )
            )
        if request.plane == "archive" and has_account_auth(request):
            findings.append(
                Finding(
                    "unlinkability.account-auth",
                    f"{request.location()}: zero-knowledge route sent with an Authorization header",
                    request.location(),
                )
            )
        found = find_needles(request.haystack(), needles)
        if found:
            findings.append(
                Finding(
                    "unlinkability.identifier",
                    f"{request.location()}: {request.plane} request contains {', '.join(found)}",
                    request.location(),
                )
            )
    return findings


def check_mixed_auth(requests: Iterable[RecordedRequest]) -> list[Finding]:
    """Find requests that carry account auth and zero-knowledge auth together."""
    return [
        Finding(
            "unlinkability.mixed-auth",
            f"{request.location()}: carries both account auth and zero-knowledge auth headers",
            request.location(),
        )
        for request in requests
        if has_account_auth(request) and has_zk_auth(request) and request.plane != "cdn"
    ]


def check_fresh_presentations(requests: Iterable[RecordedRequest]) -> list[Finding]:
    """Find zero-knowledge requests that reuse an earlier request's credential presentation."""
    first_use: dict[str, RecordedRequest] = {}
    findings = []
    for request in requests:
        presentation = request.header("x-signal-zk-auth")
        if not presentation:
            continue
        earlier = first_use.setdefault(presentation, request)
        if earlier is not request:
            findings.append(
                Finding(
                    "unlinkability.reused-presentation",
                    f"{request.location()}: reuses the credential presentation of request #{earlier.id}",
                    request.location(),
                )
            )
    return findings


def check_account_plane(
    requests: Iterable[RecordedRequest], backup_ids: Mapping[str, bytes]
) -> list[Finding]:
    """Find account-authenticated requests that reveal a backup id in any encoding."""
    needles = backup_id_needles(backup_ids)
    findings = []
    for request in requests:
        if request.plane != "account":
            continue
        found = find_needles(request.haystack(), needles)
        if found:
            findings.append(
                Finding(
                    "unlinkability.backup-id",
                    f"{request.location()}: account request contains {', '.join(found)}",
                    request.location(),
                )
            )
    return findings


def credential_window(request: RecordedRequest) -> tuple[int, int] | None:
    """Return (redemptionStartSeconds, redemptionEndSeconds) of a credential fetch."""
    values = request.query_values()
    try:
        return int(values["redemptionStartSeconds"][0]), int(values["redemptionEndSeconds"][0])
    except (KeyError, IndexError, ValueError):
        return None


def check_credential_prefetch(requests: Iterable[RecordedRequest]) -> list[Finding]:
    """Find credential fetches that are not ahead of time.

    Each ``GET /v1/archives/auth`` must ask for at least 7 days, and none may happen while an
    earlier successful fetch still covers the current UTC day: fetching just before each
    anonymous request would let the server link the two by timing. Pass the requests of a
    stretch in which the app keeps its credential cache (no wipe, restore or new key).
    """
    findings = []
    covered_until: int | None = None  # first day start no longer covered by a fetch
    covering: RecordedRequest | None = None
    for request in requests:
        if (request.method, request.path) != AUTH_ROUTE:
            continue
        window = credential_window(request)
        if window is None:
            findings.append(
                Finding(
                    "unlinkability.credential-window",
                    f"{request.location()}: credential fetch without a redemption window",
                    request.location(),
                )
            )
            continue
        start, end = window
        today = int(request.time) // DAY_SECONDS * DAY_SECONDS
        if covered_until is not None and covering is not None and today < covered_until:
            findings.append(
                Finding(
                    "unlinkability.credential-refetch",
                    f"{request.location()}: credentials fetched again although request "
                    f"#{covering.id} already covered this day",
                    request.location(),
                )
            )
        if end - start < CREDENTIAL_WINDOW_SECONDS:
            days = (end - start) / DAY_SECONDS
            findings.append(
                Finding(
                    "unlinkability.credential-window",
                    f"{request.location()}: credentials requested for {days:g} days, "
                    "expected at least 7 days ahead",
                    request.location(),
                )
            )
        if request.status is None or 200 <= request.status < 300:
            covered_until = end + DAY_SECONDS
            covering = request
    return findings


def check_unlinkability(
    requests: list[RecordedRequest],
    identity: AccountIdentity,
    backup_ids: Mapping[str, bytes],
) -> list[Finding]:
    """Run every traffic rule except credential timing (which needs a cache-keeping stretch)."""
    return [
        *check_archive_plane(requests, identity),
        *check_mixed_auth(requests),
        *check_fresh_presentations(requests),
        *check_account_plane(requests, backup_ids),
    ]
