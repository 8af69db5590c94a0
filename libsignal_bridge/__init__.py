"""A long-lived Node process that runs Signal's libsignal for the Python side.

No Python library implements zkgroup, and libsignal is also this project's test oracle, so one
helper process (``helper.js``) serves both: the stub server uses the server half of the backup
credentials, the reference app the client half, and tests and ``run --corpus`` the validator
and ``ComparableBackup``. The helper speaks JSON lines; see ``helper.js`` for the protocol.

Usage::

    with Bridge() as bridge:
        params = bridge.call("zk_server_params_generate")

``Bridge.call`` is thread-safe and may be used from several threads at once. If the process
has died, the next call restarts it once before giving up with ``BridgeError``.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

from harness.errors import BridgeError

log = logging.getLogger(__name__)

HELPER_SCRIPT = Path(__file__).with_name("helper.js")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TIMEOUT = 60.0


class LibsignalError(Exception):
    """libsignal rejected an operation (a failed verification, an invalid input).

    This is a result, not an infrastructure failure: the stub turns it into a 4xx status and
    the tests assert on it. ``kind`` is the libsignal error class name.
    """

    def __init__(self, op: str, message: str, kind: str):
        super().__init__(f"{op}: {message}")
        self.op = op
        self.kind = kind
        self.detail = message


def b64(data: bytes) -> str:
    """Encode bytes for the helper (standard base64 with padding)."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def _node_environment() -> dict[str, str]:
    env = dict(os.environ)
    # node_modules lives at the project root (installed by `make setup`); an override lets an
    # installed copy of the harness point at another one.
    extra = os.environ.get("BACKUP_HARNESS_NODE_MODULES", str(PROJECT_ROOT / "node_modules"))
    env["NODE_PATH"] = os.pathsep.join(p for p in (extra, env.get("NODE_PATH", "")) if p)
    return env


class Bridge:
    """One helper process and the requests in flight to it."""

    def __init__(self, node: str | None = None, timeout: float = DEFAULT_TIMEOUT):
        self._node = node or os.environ.get("BACKUP_HARNESS_NODE", "node")
        self._timeout = timeout
        self._process: subprocess.Popen[str] | None = None
        self._pending: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Bridge:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the helper process unless it is already running."""
        with self._lock:
            if self.running:
                return
            if shutil.which(self._node) is None:
                raise BridgeError(
                    f"Node.js executable {self._node!r} not found; install Node.js 20 or newer "
                    "and run `make setup`"
                )
            if not (PROJECT_ROOT / "node_modules" / "@signalapp" / "libsignal-client").is_dir() and (
                "BACKUP_HARNESS_NODE_MODULES" not in os.environ
            ):
                raise BridgeError(
                    "@signalapp/libsignal-client is not installed in "
                    f"{PROJECT_ROOT / 'node_modules'}; run `make setup`"
                )
            self._process = subprocess.Popen(
                [self._node, str(HELPER_SCRIPT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
                env=_node_environment(),
            )
            process = self._process
            self._threads = [
                threading.Thread(
                    target=self._read_replies, args=(process,), name="libsignal-bridge", daemon=True
                ),
                threading.Thread(
                    target=self._log_stderr, args=(process,), name="libsignal-bridge-stderr", daemon=True
                ),
            ]
            for thread in self._threads:
                thread.start()
            log.info("libsignal bridge started (pid %d)", process.pid)

    def close(self) -> None:
        """Stop the helper process. Safe to call more than once."""
        with self._lock:
            process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin:
                process.stdin.close()
            process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        # The reader threads end with the process's pipes; joining them here means nothing
        # logs on their behalf after close() returns (an app may close its log right after).
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        log.info("libsignal bridge stopped (pid %d)", process.pid)

    def call(self, op: str, **args: Any) -> Any:
        """Run one op and return its result; raise LibsignalError when libsignal rejects it."""
        try:
            return self._call_once(op, args)
        except _ProcessDied:
            log.warning("libsignal bridge died during %s; restarting it once", op)
            self.close()
            try:
                return self._call_once(op, args)
            except _ProcessDied as error:
                raise BridgeError(f"libsignal bridge died twice during {op}: {error}") from None

    def _call_once(self, op: str, args: dict[str, Any]) -> Any:
        self.start()
        request_id = next(self._ids)
        replies: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=1)
        self._pending[request_id] = replies
        process = self._process
        try:
            line = json.dumps({"id": request_id, "op": op, "args": args}) + "\n"
            with self._write_lock:
                if process is None or process.stdin is None:
                    raise _ProcessDied("not running")
                try:
                    process.stdin.write(line)
                    process.stdin.flush()
                except (BrokenPipeError, OSError) as error:
                    raise _ProcessDied(str(error)) from None
            try:
                reply = replies.get(timeout=self._timeout)
            except queue.Empty:
                raise BridgeError(
                    f"libsignal bridge timed out after {self._timeout:.0f} s on {op}"
                ) from None
        finally:
            self._pending.pop(request_id, None)
        if reply.get("dead"):
            raise _ProcessDied(reply.get("error", "exited"))
        if not reply.get("ok"):
            kind = reply.get("kind", "Error")
            if kind == "ProtocolError":
                raise BridgeError(f"libsignal bridge rejected {op}: {reply.get('error')}")
            raise LibsignalError(op, reply.get("error", "unknown error"), kind)
        return reply.get("result")

    def _read_replies(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                reply = json.loads(line)
            except json.JSONDecodeError:
                log.warning("libsignal bridge wrote a line that is not JSON: %.200s", line)
                continue
            waiting = self._pending.get(reply.get("id"))
            if waiting is not None:
                waiting.put(reply)
        code = process.wait()
        for waiting in list(self._pending.values()):
            waiting.put({"dead": True, "error": f"exit status {code}"})

    @staticmethod
    def _log_stderr(process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.warning("libsignal bridge: %s", line.rstrip())


class _ProcessDied(Exception):
    pass


_shared: Bridge | None = None
_shared_lock = threading.Lock()


def shared_bridge() -> Bridge:
    """Return a process-wide bridge, started on first use and closed at interpreter exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            import atexit

            _shared = Bridge()
            atexit.register(_shared.close)
        return _shared
