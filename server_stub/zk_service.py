"""Per-data-directory zero-knowledge key material and the libsignal bridge that uses it.

The backup credential secret params are generated on first use and kept in
``<data>/secrets/zk-backup-secret-params.bin`` (mode 0600). A restart on the same data
directory therefore keeps accepting the credentials it issued, and an app configured with the
public params (read through the admin API) stays valid. The bridge process starts on first use.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from libsignal_bridge import Bridge, b64, unb64
from libsignal_bridge.zk import ZkServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Receipt:
    """Values revealed by a verified receipt presentation."""

    level: int
    expiration: int
    serial: bytes


def load_or_create_secret(path: Path, create: callable) -> bytes:  # type: ignore[valid-type]
    """Return the bytes in ``path``, writing ``create()`` there first (0600, atomic) if absent."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    value = create()
    temp = path.with_suffix(".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    return value


class ZkService:
    def __init__(self, data_dir: Path, bridge: Bridge | None = None):
        self._secrets_dir = Path(data_dir) / "secrets"
        self._bridge = bridge
        self._owns_bridge = bridge is None
        self._server: ZkServer | None = None
        self._public_params: bytes | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "ZkService(<secret params hidden>)"

    @property
    def bridge(self) -> Bridge:
        with self._lock:
            if self._bridge is None:
                self._bridge = Bridge()
            return self._bridge

    def server(self) -> ZkServer:
        bridge = self.bridge
        with self._lock:
            if self._server is None:
                path = self._secrets_dir / "zk-backup-secret-params.bin"
                secret = load_or_create_secret(path, lambda: ZkServer.generate_secret_params(bridge))
                self._server = ZkServer(bridge, secret)
                log.info("backup credential params loaded from %s", path)
            return self._server

    def public_params(self) -> bytes:
        server = self.server()
        with self._lock:
            if self._public_params is None:
                self._public_params = server.public_params()
            return self._public_params

    def _receipt_secret(self) -> str:
        bridge = self.bridge
        path = self._secrets_dir / "zk-receipt-secret-params.bin"
        with self._lock:
            secret = load_or_create_secret(
                path, lambda: unb64(bridge.call("receipt_server_params_generate")["secret_params"])
            )
        return b64(secret)

    def receipt_public_params(self) -> bytes:
        return unb64(self.bridge.call("receipt_server_public_params", secret_params=self._receipt_secret()))

    def issue_receipt(self, request: bytes, expiration: int, level: int) -> bytes:
        """Issue a receipt credential, the payment processor's step (admin API only)."""
        response = self.bridge.call(
            "receipt_issue", secret_params=self._receipt_secret(), request=b64(request), expiration=expiration, level=level
        )
        return unb64(response)

    def verify_receipt(self, presentation: bytes) -> Receipt:
        """Verify a ReceiptCredentialPresentation; LibsignalError when it does not verify."""
        result = self.bridge.call(
            "receipt_verify_presentation", secret_params=self._receipt_secret(), presentation=b64(presentation)
        )
        return Receipt(level=int(result["level"]), expiration=int(result["expiration"]), serial=unb64(result["serial"]))

    def close(self) -> None:
        with self._lock:
            bridge, self._bridge = self._bridge, None
            self._server = None
        if bridge is not None and self._owns_bridge:
            bridge.close()


def load_cdn_secret(data_dir: Path) -> bytes:
    return load_or_create_secret(Path(data_dir) / "secrets" / "cdn-token-secret.bin", lambda: secrets.token_bytes(32))
