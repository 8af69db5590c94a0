"""The simulated device's own localhost, as an app on it reaches it.

An app on a phone that connects to ``127.0.0.1:PORT`` reaches whatever listens on the
phone; with ``adb reverse tcp:PORT tcp:HOSTPORT`` that is the host's ``HOSTPORT``. The app
hosted by the double runs on the host, so each device port it uses gets a host-side proxy
that forwards through the device's current reverse rule, and refuses the connection when no
rule exists, as the phone would. Reverse traffic travels over adb, not the radios, so airplane
mode does not cut it (on a phone it does not either).
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from harness.android.double.device import SimulatedDevice

log = logging.getLogger(__name__)

EMULATOR_HOST_ALIAS = "10.0.2.2"  # the emulator's name for the host's loopback interface


class UnreachableUrl(ValueError):
    """The device cannot reach this URL at all (not loopback, not the emulator's host alias)."""


class DeviceLoopback:
    """Host-side proxies that stand for ports on the device's localhost."""

    def __init__(self, device: SimulatedDevice) -> None:
        self.device = device
        self._proxies: dict[int, socket.socket] = {}
        self._lock = threading.Lock()

    def host_url(self, device_url: str) -> str:
        """Translate a URL as the app on the device would use it into one the host can open."""
        parts = urlsplit(device_url)
        if parts.port is None:
            raise UnreachableUrl(f"{device_url}: the double needs an explicit port")
        if parts.hostname in ("127.0.0.1", "localhost"):
            port = self.proxy_port(parts.port)
        elif parts.hostname == EMULATOR_HOST_ALIAS and self.device.emulator:
            port = parts.port
        else:
            raise UnreachableUrl(f"{device_url}: the device reaches only its localhost (through adb "
                                 f"reverse) and, on an emulator, {EMULATOR_HOST_ALIAS}")
        return urlunsplit((parts.scheme, f"127.0.0.1:{port}", parts.path, parts.query, parts.fragment))

    def proxy_port(self, device_port: int) -> int:
        with self._lock:
            listener = self._proxies.get(device_port)
            if listener is None:
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                listener.bind(("127.0.0.1", 0))
                listener.listen(32)
                self._proxies[device_port] = listener
                threading.Thread(target=self._accept, args=(listener, device_port), daemon=True,
                                 name=f"device-localhost-{device_port}").start()
            return listener.getsockname()[1]

    def close(self) -> None:
        with self._lock:
            for listener in self._proxies.values():
                listener.close()
            self._proxies.clear()

    def _accept(self, listener: socket.socket, device_port: int) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            rule = self.device.reverses.get(f"tcp:{device_port}")
            if rule is None or not rule.startswith("tcp:"):
                log.info("device %s: connection to localhost:%d refused (no adb reverse rule)",
                         self.device.serial, device_port)
                self.device.log("NetworkSecurity", f"connect to 127.0.0.1:{device_port} failed: ECONNREFUSED",
                                level="W", pid=1)
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", int(rule[4:])), timeout=10)
            except OSError as error:
                log.info("device %s: reverse %s -> %s failed: %s", self.device.serial, device_port, rule, error)
                client.close()
                continue
            upstream.settimeout(None)
            _Splice(client, upstream).start()


class _Splice:
    """Copies bytes both ways between two sockets; half-closes follow, then both close."""

    def __init__(self, left: socket.socket, right: socket.socket) -> None:
        self.sockets = (left, right)
        self._remaining = 2
        self._lock = threading.Lock()

    def start(self) -> None:
        left, right = self.sockets
        for source, target in ((left, right), (right, left)):
            threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
            target.shutdown(socket.SHUT_WR)
        except OSError:
            # One side broke: end the other direction too instead of leaving it blocked.
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        with self._lock:
            self._remaining -= 1
            finished = self._remaining == 0
        if finished:
            for sock in self.sockets:
                sock.close()
