"""Run the app-facing port and the admin port in one process and one event loop.

Contract: ``StubServer(config)`` binds both sockets at once (port 0 picks free ports), so
``url`` and ``admin_url`` are known before serving starts. ``run()`` serves until SIGINT or
SIGTERM (main thread) or ``request_stop()``, then closes connections (at most
``SHUTDOWN_GRACE_SECONDS``), stops the bridge and closes the databases. ``start_in_thread()``
serves from a background thread for tests and returns once both ports accept connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
import threading
from collections.abc import Callable, Generator

import anyio
import uvicorn

from server_stub.admin import create_admin_app
from server_stub.app import create_app
from server_stub.config import StubConfig
from server_stub.expiry import run_expiry
from server_stub.state import StubState
from server_stub.tls import ensure_certificate
from server_stub.transport import TrackedH11Protocol

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 5


class _UvicornServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # StubServer handles signals once for both servers.
        yield


class InvalidHostError(OSError):
    """The --host value is not an address this machine can listen on."""


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET
    try:
        if ipaddress.ip_address(host).version == 6:
            family = socket.AF_INET6
    except ValueError:
        pass
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except socket.gaierror as error:
        sock.close()
        raise InvalidHostError(
            f"invalid --host {host!r}: {error.strerror}; pass an IP address such as 127.0.0.1"
        ) from None
    except OSError as error:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.listen(256)
    sock.set_inheritable(True)
    return sock


def url_for(scheme: str, sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


class StubServer:
    def __init__(self, config: StubConfig):
        self.config = config
        self.state = StubState.open(config)
        self.cert_path = None
        ssl_options: dict[str, str] = {}
        if config.tls:
            cert_path, key_path = ensure_certificate(config.data_dir)
            self.cert_path = cert_path
            self.state.extras["cert_path"] = str(cert_path)
            ssl_options = {"ssl_certfile": str(cert_path), "ssl_keyfile": str(key_path)}
        self.app_socket = bind_socket(config.host, config.port)
        self.admin_socket = bind_socket(config.admin_host, config.admin_port)
        self.url = url_for("https" if config.tls else "http", self.app_socket)
        self.admin_url = url_for("http", self.admin_socket)
        self.state.app_url, self.state.admin_url = self.url, self.admin_url
        self._app_server = _UvicornServer(self._uvicorn_config(create_app(self.state), **ssl_options))
        self._admin_server = _UvicornServer(self._uvicorn_config(create_admin_app(self.state)))
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _uvicorn_config(app: object, **extra: str) -> uvicorn.Config:
        return uvicorn.Config(
            app,
            http=TrackedH11Protocol,
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
            **extra,
        )

    def request_stop(self) -> None:
        self._app_server.should_exit = True
        self._admin_server.should_exit = True

    async def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, self._on_signal, signum)
        watcher = asyncio.create_task(self._announce_when_started(on_ready))
        expiry = asyncio.create_task(self._expire_periodically())
        try:
            await asyncio.gather(
                self._app_server.serve(sockets=[self.app_socket]),
                self._admin_server.serve(sockets=[self.admin_socket]),
            )
        finally:
            watcher.cancel()
            expiry.cancel()
            self.state.close()
            log.info("stub server stopped")

    def _on_signal(self, signum: int) -> None:
        log.info("received %s; shutting down", signal.Signals(signum).name)
        self.request_stop()

    async def _announce_when_started(self, on_ready: Callable[[], None] | None) -> None:
        while not (self._app_server.started and self._admin_server.started):
            await asyncio.sleep(0.01)
        log.info("stub server listening on %s (admin API on %s)", self.url, self.admin_url)
        self._ready.set()
        if on_ready is not None:
            on_ready()

    async def _expire_periodically(self) -> None:
        interval = self.config.expiry_interval_seconds
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                await anyio.to_thread.run_sync(run_expiry, self.state)
            except OSError as error:
                log.error("expiration pass failed: %s", error)

    def run(self, on_ready: Callable[[], None] | None = None) -> None:
        asyncio.run(self.serve(on_ready))

    def start_in_thread(self, timeout: float = 30.0) -> StubServer:
        self._thread = threading.Thread(target=self.run, name="stub-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.request_stop()
            raise TimeoutError(f"stub server did not start within {timeout:.0f} s")
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
