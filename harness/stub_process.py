"""Start and stop the stub server as a child process.

Contract: ``StubProcess.start()`` returns once the server has printed its URLs and the admin
API responds to /health; ``stop()`` sends SIGTERM, waits, then SIGKILLs, and removes the data
directory only if ``start`` created it. ``kill()`` sends SIGKILL at once (the durability
tests use it) and keeps the data directory for a restart. The server's log goes to
``<data>/stub.log``.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

from harness.errors import StubServerError
from harness.stub_client import StubAdmin

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


class StubProcess:
    def __init__(
        self,
        process: subprocess.Popen[str],
        url: str,
        admin_url: str,
        data_dir: Path,
        owns_data_dir: bool,
        cert_path: str | None,
    ):
        self.process = process
        self.url = url
        self.admin_url = admin_url
        self.data_dir = data_dir
        self.cert_path = cert_path
        self.admin = StubAdmin(admin_url)
        self._owns_data_dir = owns_data_dir

    def __repr__(self) -> str:
        return f"StubProcess(pid={self.pid}, url={self.url!r}, admin_url={self.admin_url!r})"

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(
        cls,
        data_dir: Path | str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_port: int = 0,
        tls: bool = False,
        config: dict[str, Any] | None = None,
        timeout: float = START_TIMEOUT,
    ) -> StubProcess:
        """Start ``python -m server_stub --json`` and wait until it is healthy.

        ``config`` contains StubConfig overrides; they are written to ``<data>/stub-config.json``.
        """
        owns = data_dir is None
        directory = Path(tempfile.mkdtemp(prefix="stub-data-")) if owns else Path(data_dir)  # type: ignore[arg-type]
        directory.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "server_stub",
            "--json",
            "--data",
            str(directory),
            "--host",
            host,
            "--port",
            str(port),
            "--admin-port",
            str(admin_port),
        ]
        if tls:
            command.append("--tls")
        if config:
            config_path = directory / "stub-config.json"
            config_path.write_text(json.dumps(config))
            command += ["--config", str(config_path)]
        log_file = (directory / "stub.log").open("a")
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=log_file, text=True, start_new_session=True
        )
        log_file.close()
        try:
            line = _read_first_line(process, timeout)
            announced = json.loads(line)
        except (StubServerError, json.JSONDecodeError) as error:
            _terminate(process)
            raise StubServerError(f"stub server did not start: {error}; see {directory / 'stub.log'}") from None
        threading.Thread(target=_drain, args=(process,), daemon=True, name="stub-stdout").start()
        stub = cls(process, announced["url"], announced["admin_url"], directory, owns, announced.get("cert_path"))
        stub._wait_healthy(timeout)
        log.info("stub server started: %s (admin %s, pid %d)", stub.url, stub.admin_url, stub.pid)
        return stub

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(f"{self.admin_url}/__harness/health", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                _terminate(self.process)
                raise StubServerError(
                    f"stub server at {self.admin_url} did not become healthy; see {self.data_dir / 'stub.log'}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Stop with SIGTERM (SIGKILL after ``timeout``); return the exit status."""
        self.admin.close()
        status = _terminate(self.process, timeout)
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        return status

    def kill(self) -> None:
        """SIGKILL the server at once; the data directory is kept."""
        self.admin.close()
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def __enter__(self) -> StubProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _read_first_line(process: subprocess.Popen[str], timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        raise StubServerError(f"no URL line within {timeout:.0f} s") from None
    if not line:
        raise StubServerError(f"the process exited with status {process.wait()}")
    return line


def _drain(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    for _ in process.stdout:
        pass


def _terminate(process: subprocess.Popen[str], timeout: float = STOP_TIMEOUT) -> int | None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("stub server pid %d ignored SIGTERM for %.0f s; killing it", process.pid, timeout)
            process.kill()
            process.wait()
    return process.returncode
