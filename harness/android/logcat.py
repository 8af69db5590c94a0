"""Logcat as a session-long service: positions, ``wait_for``, excerpts, reconnects.

The service streams ``logcat -v threadtime -v epoch`` from the moment it starts and keeps
every line in memory, numbered from 0. A :class:`LogPosition` is such a number, so "the lines
of this test" is ``read(since=position_at_test_start)`` and waiting for an event is
``wait_for(r"backup uploaded", since=position, timeout=60)`` rather than a sleep.

It follows :class:`harness.android.service.DeviceService`. After an unexpected end of the
stream (the device dropped off adb) it waits for the device once and restarts ``logcat``
with ``-T <epoch of the last line>``, skipping the lines it already holds, so nothing is read
twice. Files it writes (excerpts, the session log) pass through the :class:`Redactor`. The
in-memory lines stay raw because the leak scan must see a leaked recovery key.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import adbutils

from harness.android.device import AndroidDevice
from harness.android.errors import DeviceOfflineError, LogWaitTimeoutError
from harness.android.redaction import Redactor
from harness.android.service import DeviceService
from harness.errors import DeviceError, InfrastructureError
from harness.targets.base import LogLine, LogPosition

log = logging.getLogger(__name__)

LOGCAT_COMMAND = ("logcat", "-v", "threadtime", "-v", "epoch")
READ_TIMEOUT_S = 0.5
_EPOCH_PREFIX = re.compile(r"^\s*(\d+\.\d{3})\s")

LineListener = Callable[[LogLine], None]


class LogcatService(DeviceService):
    """Always-on logcat capture for one device."""

    def __init__(self, device: AndroidDevice, *, redactor: Redactor | None = None,
                 reconnect_timeout: float | None = None, extra_args: tuple[str, ...] = ()) -> None:
        self.device = device
        self.redactor = redactor if redactor is not None else Redactor()
        self.reconnect_timeout = reconnect_timeout if reconnect_timeout is not None else device.reconnect_timeout
        self.extra_args = extra_args
        self._lines: list[LogLine] = []
        self._changed = threading.Condition()
        self._listeners: list[LineListener] = []
        self._stream: adbutils.AdbConnection | None = None
        self._thread: threading.Thread | None = None
        self._stop_requested = threading.Event()
        self._running = False
        self._paused = False
        self._failure: InfrastructureError | None = None
        self._last_epoch: str | None = None
        self._seen_at_last_epoch: set[str] = set()
        self._excerpt_start = 0
        self.reconnects = 0

    # Lifecycle --------------------------------------------------------------------------------
    @property
    def is_alive(self) -> bool:
        return self._running and not self._paused and self._failure is None

    @property
    def failure(self) -> InfrastructureError | None:
        return self._failure

    def start(self) -> None:
        if self._running:
            raise RuntimeError(f"logcat service on {self.device.serial} is already running")
        since = self._device_epoch()
        self._last_epoch = since
        self._open_stream(since)
        self._running = True
        self._start_reader()
        log.info("logcat service started on %s", self.device.serial)

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        self._halt_reader()
        with self._changed:
            self._changed.notify_all()
        log.info("logcat service stopped on %s (%d lines, %d reconnects)", self.device.serial,
                 len(self._lines), self.reconnects)

    def pause(self) -> None:
        if not self._running or self._paused:
            return
        self._paused = True
        self._halt_reader()
        log.info("logcat service paused on %s at line %d", self.device.serial, len(self._lines))

    def resume(self) -> None:
        if not self._running or not self._paused:
            return
        self._open_stream(self._last_epoch)
        self._paused = False
        self._start_reader()
        log.info("logcat service resumed on %s", self.device.serial)

    # Reading ----------------------------------------------------------------------------------
    def position(self) -> LogPosition:
        with self._changed:
            return LogPosition(len(self._lines))

    def read(self, since: LogPosition | None = None) -> list[LogLine]:
        with self._changed:
            return list(self._lines[since.offset if since else 0:])

    def add_listener(self, listener: LineListener) -> None:
        """Call ``listener`` with every new line (from the reader thread; keep it fast)."""
        self._listeners.append(listener)

    def wait_for(self, pattern: str | re.Pattern[str], since: LogPosition | None = None,
                 timeout: float = 30.0) -> LogLine:
        """Return the first line at or after ``since`` that matches ``pattern`` (re.search).

        Raises LogWaitTimeoutError after ``timeout`` seconds, or the service's recorded
        DeviceError when the device dropped off and did not come back.
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        index = since.offset if since else 0
        with self._changed:
            while True:
                while index < len(self._lines):
                    line = self._lines[index]
                    if regex.search(line.text):
                        return line
                    index += 1
                if self._failure is not None:
                    raise self._failure
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LogWaitTimeoutError(
                        f"no logcat line on {self.device.serial} matched /{regex.pattern}/ within "
                        f"{timeout:g} s ({len(self._lines) - (since.offset if since else 0)} lines read)"
                    )
                self._changed.wait(remaining)

    # Output ------------------------------------------------------------------------------------
    def excerpt(self, path: Path, since: LogPosition | None = None, until: LogPosition | None = None) -> Path:
        """Write the lines in [since, until) to ``path``, secrets masked."""
        start = since.offset if since else 0
        end = until.offset if until else None
        with self._changed:
            lines = self._lines[start:end]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(self.redactor.redact(line.text) + "\n" for line in lines), encoding="utf-8")
        return path

    def create_output_excerpts(self, test_name: str, destination: Path) -> list[Path]:
        end = self.position()
        safe = re.sub(r"[^\w.-]+", "_", test_name).strip("_") or "test"
        path = self.excerpt(destination / f"logcat,{self.device.serial},{safe}.txt",
                            LogPosition(self._excerpt_start), end)
        self._excerpt_start = end.offset
        return [path]

    # Stream handling -----------------------------------------------------------------------------
    def _device_epoch(self) -> str:
        text = self.device.shell("echo $EPOCHREALTIME").stdout.strip()
        try:
            return f"{float(text):.3f}"
        except ValueError:
            return f"{int(self.device.shell(['date', '+%s']).stdout.strip()):d}.000"

    def _open_stream(self, since_epoch: str | None) -> None:
        args = list(LOGCAT_COMMAND) + list(self.extra_args)
        if since_epoch is not None:
            args += ["-T", since_epoch]
        stream = self.device.open_shell_stream(args)
        stream.conn.settimeout(READ_TIMEOUT_S)
        self._stream = stream

    def _start_reader(self) -> None:
        self._stop_requested.clear()
        self._thread = threading.Thread(target=self._read_loop, name=f"logcat-{self.device.serial}",
                                        daemon=True)
        self._thread.start()

    def _halt_reader(self) -> None:
        self._stop_requested.set()
        if self._stream is not None:
            self._stream.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None
        self._stream = None

    def _read_loop(self) -> None:
        while True:
            delivered = self._pump(self._stream)
            if self._stop_requested.is_set():
                return
            log.warning("logcat stream of %s ended unexpectedly; reconnecting once", self.device.serial)
            try:
                self._reconnect(previous_delivered=delivered)
            except (DeviceError, InfrastructureError) as error:
                log.error("logcat service on %s failed: %s", self.device.serial, error)
                with self._changed:
                    self._failure = error
                    self._changed.notify_all()
                return

    def _reconnect(self, previous_delivered: int) -> None:
        if self._stream is not None:
            self._stream.close()
        if previous_delivered == 0 and self.reconnects > 0:
            raise DeviceOfflineError(f"logcat on {self.device.serial} ended again right after a reconnect; "
                                     "the device is unstable (check `adb devices`)")
        self.device.wait_online(self.reconnect_timeout)
        self._open_stream(self._last_epoch)
        self.reconnects += 1
        log.info("logcat on %s reconnected (from %s)", self.device.serial, self._last_epoch)

    def _pump(self, stream: adbutils.AdbConnection | None) -> int:
        """Read lines until the stream ends or a stop is requested; return lines added."""
        if stream is None:
            return 0
        added = 0
        pending = b""
        while not self._stop_requested.is_set():
            try:
                chunk = stream.conn.recv(65536)
            except socket.timeout:
                continue
            except (OSError, adbutils.AdbError):
                break
            if not chunk:
                break
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                added += self._accept(raw.decode("utf-8", errors="replace").rstrip("\r"))
        return added

    def _accept(self, text: str) -> int:
        if not text or text.startswith("--------- beginning of"):
            return 0
        match = _EPOCH_PREFIX.match(text)
        epoch = match.group(1) if match else None
        if epoch is not None and epoch == self._last_epoch and text in self._seen_at_last_epoch:
            return 0  # already read before a reconnect (-T repeats lines at that instant)
        if epoch is not None:
            if epoch != self._last_epoch:
                self._last_epoch, self._seen_at_last_epoch = epoch, set()
            self._seen_at_last_epoch.add(text)
        with self._changed:
            line = LogLine(LogPosition(len(self._lines)), text)
            self._lines.append(line)
            self._changed.notify_all()
        for listener in self._listeners:
            listener(line)
        return 1
