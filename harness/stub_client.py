"""Client of the stub server's admin API (``/__harness/``, loopback only).

Every method maps to one admin route documented in server_stub/ADMIN_API.md. A failure to
reach the admin API, or a response with an unexpected status, raises StubServerError. That is
an infrastructure error, so it says nothing about the app under test.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
from pathlib import Path
from typing import Any

import requests

from harness.errors import StubServerError

DEFAULT_TIMEOUT = 30.0


class StubAdmin:
    def __init__(self, admin_url: str, timeout: float = DEFAULT_TIMEOUT):
        self.admin_url = admin_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"StubAdmin({self.admin_url!r})"

    def close(self) -> None:
        self._session.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _request(self, method: str, path: str, expected: tuple[int, ...] = (200,), **kwargs: Any) -> requests.Response:
        url = f"{self.admin_url}/__harness{path}"
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self._session.request(method, url, **kwargs)
        except requests.RequestException as error:
            raise StubServerError(f"stub admin API at {self.admin_url} did not respond to {method} {path}: {error}") from None
        if response.status_code not in expected:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise StubServerError(
                f"stub admin API {method} {path} returned {response.status_code}: {str(message)[:300]}"
            )
        return response

    def _json(self, method: str, path: str, expected: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        return self._request(method, path, expected, **kwargs).json()

    # -- status -----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._json("GET", "/health")

    def info(self) -> dict[str, Any]:
        """Return the URLs, pid, data directory and effective configuration."""
        return self._json("GET", "/info")

    # -- accounts, receipts, zk -------------------------------------------------------------

    def register_account(
        self, aci: str, password: str, e164: str | None = None, device_id: int = 1, backup_level: int | None = None
    ) -> dict[str, Any]:
        body = {"aci": aci, "password": password, "e164": e164, "device_id": device_id, "backup_level": backup_level}
        return self._json("POST", "/accounts", (201,), json=body)

    def accounts(self) -> list[dict[str, Any]]:
        return self._json("GET", "/accounts")["accounts"]

    def set_voucher(self, aci: str, level: int | None, expiration: int | None) -> None:
        self._request("PUT", f"/accounts/{aci}/voucher", (204,), json={"level": level, "expiration": expiration})

    def zk_public_params(self) -> bytes:
        """Return the GenericServerPublicParams an app must be configured with."""
        return base64.b64decode(self._json("GET", "/zk")["backup_public_params"])

    def receipt_public_params(self) -> bytes:
        return base64.b64decode(self._json("GET", "/zk")["receipt_public_params"])

    def issue_receipt(self, request: bytes, expiration: int, level: int = 201) -> bytes:
        """Issue a receipt credential response for a ReceiptCredentialRequest (payment step)."""
        body = {"request": base64.b64encode(request).decode("ascii"), "expiration": expiration, "level": level}
        return base64.b64decode(self._json("POST", "/receipts", json=body)["response"])

    # -- markers and recordings -------------------------------------------------------------

    def set_marker(self, name: str | None) -> int:
        """Tag the following recordings with ``name``; return the id of the last earlier one."""
        return int(self._json("POST", "/marker", json={"name": name})["last_id"])

    def marker(self) -> str | None:
        return self._json("GET", "/marker")["marker"]

    def recordings(
        self, marker: str | None = None, plane: str | None = None, since_id: int | None = None, limit: int = 10_000
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if marker is not None:
            params["marker"] = marker
        if plane is not None:
            params["plane"] = plane
        if since_id is not None:
            params["since_id"] = since_id
        return self._json("GET", "/recordings", params=params)["recordings"]

    def recording(self, record_id: int) -> dict[str, Any]:
        return self._json("GET", f"/recordings/{record_id}")

    def request_body(self, record_id: int) -> bytes:
        return self._request("GET", f"/recordings/{record_id}/request-body").content

    def response_body(self, record_id: int) -> bytes:
        return self._request("GET", f"/recordings/{record_id}/response-body").content

    def body(self, sha256: str) -> bytes:
        return self._request("GET", f"/bodies/{sha256}").content

    def clear_recordings(self) -> None:
        self._request("DELETE", "/recordings", (204,))

    # -- clock, expiry, reset ----------------------------------------------------------------

    def clock(self) -> dict[str, Any]:
        return self._json("GET", "/clock")

    def now(self) -> float:
        return float(self.clock()["now"])

    def set_clock(self, now: float | None = None, offset_seconds: float | None = None, frozen: bool = False) -> dict[str, Any]:
        return self._json("PUT", "/clock", json={"now": now, "offset_seconds": offset_seconds, "frozen": frozen})

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        return self._json("POST", "/clock/advance", json={"seconds": seconds})

    def run_expiry(self) -> dict[str, Any]:
        return self._json("POST", "/expire")

    def reset(self, keep_accounts: bool = False) -> None:
        self._json("POST", "/reset", json={"keep_accounts": keep_accounts})

    # -- objects and records ------------------------------------------------------------------

    def objects(self, prefix: str = "") -> list[dict[str, Any]]:
        return self._json("GET", "/objects", params={"prefix": prefix})["objects"]

    def object_bytes(self, path: str) -> bytes:
        return self._request("GET", f"/objects/{path}").content

    def object_exists(self, path: str) -> bool:
        return self._request("GET", f"/objects/{path}", (200, 404), stream=True).status_code == 200

    def download_object(self, path: str, destination: Path) -> Path:
        """Stream a stored object to ``destination`` without holding it in memory."""
        response = self._request("GET", f"/objects/{path}", stream=True)
        destination = Path(destination)
        with destination.open("wb") as handle:
            shutil.copyfileobj(response.raw, handle)
        return destination

    def put_object(self, path: str, data: bytes) -> None:
        """Store ``data`` as the object at ``path`` (replacing any object there)."""
        self._request("PUT", f"/objects/{path}", (204,), data=data)

    def delete_object(self, path: str) -> None:
        self._request("DELETE", f"/objects/{path}", (204,))

    def corrupt_object(self, path: str, offset: int | None = None, bit: int = 0) -> dict[str, Any]:
        return self._json("POST", "/corrupt", json={"path": path, "offset": offset, "bit": bit})

    def backups(self) -> list[dict[str, Any]]:
        return self._json("GET", "/backups")["backups"]

    def backup(self, backup_id: bytes) -> dict[str, Any] | None:
        """Return the record of a 16-byte backup id, or None if it has none."""
        found = self._json("GET", "/backups", params={"backup_id": backup_id.hex()})["backups"]
        return found[0] if found else None

    def message_backup_path(self, backup_id: bytes) -> str | None:
        """Return the object path of the backup id's message backup, or None."""
        record = self.backup(backup_id)
        return f"backups/{record['backup_dir']}/messageBackup" if record else None

    def uploads(self) -> list[dict[str, Any]]:
        return self._json("GET", "/uploads")["uploads"]

    # -- faults ---------------------------------------------------------------------------------

    def add_fault(self, path: str, action: str, **options: Any) -> dict[str, Any]:
        """Install a fault (see ADMIN_API.md for the options); return it with its id."""
        return self._json("POST", "/faults", (201,), json={"path": path, "action": action, **options})

    def faults(self) -> list[dict[str, Any]]:
        return self._json("GET", "/faults")["faults"]

    def remove_fault(self, fault_id: str) -> None:
        self._request("DELETE", f"/faults/{fault_id}", (204,))

    def clear_faults(self) -> None:
        self._request("DELETE", "/faults", (204,))


def hashed_backup_id(backup_id: bytes) -> str:
    """Return the hex record key the stub uses for a backup id (SHA-256, first 16 bytes)."""
    return hashlib.sha256(backup_id).digest()[:16].hex()
