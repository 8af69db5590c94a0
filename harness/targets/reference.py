"""The reference app as a target: a child process driven through its loopback control API.

``ReferenceTarget`` starts ``python -m reference_app --data DIR --json`` and talks to it only
the way the harness talks to a phone: user actions and screens over the control API
(``reference_app/CONTROL_API.md``), its log file, and its data directory. It never imports the
app's code.

Files under ``work_dir``: ``app-data/`` (the app's data, removed by ``wipe``), ``app.log``
(the log, kept across wipes like logcat), ``device.json`` (clock and server address, kept
across wipes) and ``app.stderr`` (the process's stderr).

Errors: a dead or unreachable app, a timed-out request and a failed start raise
``DeviceError``; the app refusing an action (an unknown chat, backups off) raises
``ActionRejectedError``; backup and restore failures are data (``BackupResult.ok``,
``RestoreResult.ok``).
"""

from __future__ import annotations

import json
import logging
import queue
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import requests

from harness.errors import DeviceError
from harness.targets.base import (
    Account,
    ActionRejectedError,
    BackupResult,
    BackupStatus,
    LogLine,
    LogPosition,
    RestoreResult,
    StubEndpoints,
    Target,
    VisibleAttachment,
    VisibleMessage,
)

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
REQUEST_TIMEOUT = 30.0
# Extra seconds the HTTP request may take beyond the app-side wait of a backup or restore.
WAIT_MARGIN = 15.0
SCENARIO_BATCH = 500
ARTIFACT_LOG_LINES = 2000
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ReferenceTarget(Target):
    """The embedded reference app, one process per ``start``."""

    name = "reference"

    def __init__(
        self,
        work_dir: Path | str,
        *,
        defects: Iterable[str] = (),
        policy: str = "android",
        layout: str = "modern",
        seed: int | None = None,
        python: str = sys.executable,
        start_timeout: float = START_TIMEOUT,
        request_timeout: float = REQUEST_TIMEOUT,
    ):
        self.work_dir = Path(work_dir)
        self.data_dir = self.work_dir / "app-data"
        self.log_path = self.work_dir / "app.log"
        self.device_file = self.work_dir / "device.json"
        self.stderr_path = self.work_dir / "app.stderr"
        self.defects = tuple(defects)
        self.policy = policy
        self.layout = layout
        self.seed = seed
        self._python = python
        self._start_timeout = start_timeout
        self._request_timeout = request_timeout
        self._process: subprocess.Popen[str] | None = None
        self._url: str | None = None
        self._session = requests.Session()
        self._session.trust_env = False
        # Recovery keys this target has seen, redacted from every artifact it writes.
        self._secrets: set[str] = set()

    def __repr__(self) -> str:
        return f"ReferenceTarget(work_dir={str(self.work_dir)!r}, defects={list(self.defects)!r})"

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def control_url(self) -> str:
        self._require_running()
        assert self._url is not None
        return self._url

    def install(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        if self.running:
            return
        self.install()
        command = [
            self._python, "-m", "reference_app",
            "--data", str(self.data_dir),
            "--log", str(self.log_path),
            "--device-file", str(self.device_file),
            "--policy", self.policy,
            "--layout", self.layout,
            "--json",
        ]
        for defect in self.defects:
            command += ["--defect", defect]
        if self.seed is not None:
            command += ["--seed", str(self.seed)]
        stderr = open(self.stderr_path, "ab")  # noqa: SIM115 - owned by the child process
        try:
            process = subprocess.Popen(
                command, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, text=True
            )
        finally:
            stderr.close()
        line = _first_line(process, self._start_timeout)
        if line is None:
            code = _stop_process(process)
            raise DeviceError(
                f"the reference app did not start within {self._start_timeout:g} s (exit status {code}): "
                f"{self._stderr_tail()}"
            )
        try:
            ready = json.loads(line)
            url = ready["control_url"]
        except (ValueError, KeyError, TypeError):
            _stop_process(process)
            raise DeviceError(f"the reference app printed an unexpected first line {line[:200]!r}") from None
        self._process, self._url = process, url
        threading.Thread(target=_drain, args=(process,), daemon=True).start()
        log.info("reference app started pid=%d url=%s", process.pid, url)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                self._session.post(f"{self._url}/shutdown", timeout=5)
            except requests.RequestException:
                process.terminate()
        code = _stop_process(process)
        log.info("reference app stopped pid=%d exit=%s", process.pid, code)

    def wipe(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        log.info("reference app data wiped: %s", self.data_dir)

    def close(self) -> None:
        self.stop()
        self._session.close()

    # --- control requests ----------------------------------------------------------------------

    def _require_running(self) -> None:
        if self._process is None:
            raise DeviceError("the reference app is not running; call start() first")
        code = self._process.poll()
        if code is not None:
            self._process = None
            raise DeviceError(f"the reference app exited with status {code}: {self._stderr_tail()}")

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, *, timeout: float | None = None,
                params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one control request and return its JSON reply.

        Raises DeviceError when the app is not running, does not respond or times out, and
        ActionRejectedError when it responds with an error status.
        """
        self._require_running()
        limit = timeout if timeout is not None else self._request_timeout
        try:
            response = self._session.request(method, f"{self._url}{path}", json=body, params=params, timeout=(5, limit))
        except requests.Timeout:
            raise DeviceError(f"the reference app did not respond to {method} {path} within {limit:g} s") from None
        except requests.ConnectionError as error:
            self._require_running()
            raise DeviceError(f"cannot reach the reference app at {self._url} for {method} {path}: {error}") from None
        try:
            payload = response.json()
        except ValueError:
            raise DeviceError(f"the reference app responded to {method} {path} with HTTP {response.status_code} and no JSON") from None
        if response.status_code >= 400:
            error = payload.get("error", {}) if isinstance(payload, dict) else {}
            code = error.get("code", "error")
            message = error.get("message", f"HTTP {response.status_code}")
            if code == "timeout" and response.status_code in (408, 504):
                raise DeviceError(f"the reference app timed out on {method} {path}: {message}")
            raise ActionRejectedError(f"the reference app rejected {method} {path}: {message}", status=response.status_code, code=code)
        return payload

    # --- setup -------------------------------------------------------------------------------------

    def point_at(self, stub: StubEndpoints) -> None:
        self.request("POST", "/server", {"url": stub.url, "zk_public_params": stub.zk_public_params})

    def register_account(self, account: Account) -> None:
        self.request(
            "POST",
            "/account",
            {"aci": account.aci, "e164": account.e164, "device_id": account.device_id, "password": account.password},
        )

    def load_scenario(self, scenario: dict[str, Any]) -> None:
        """Load a scenario: a ``harness.scenario`` Scenario (resolved here) or a resolved one.

        Relative times resolve against the scenario's ``now`` when it has one, otherwise
        against the device clock. The scenario's ``steps`` are not run here; the suite runs them.
        """
        resolved = self._resolved(scenario)
        header = {key: resolved[key] for key in ("name", "now_ms", "self", "contacts", "groups", "chats")}
        self.request("POST", "/scenario", header, timeout=max(self._request_timeout, 120))
        batch: list[dict[str, Any]] = []
        start = 0
        for message in resolved["messages"]:
            batch.append(message)
            if len(batch) == SCENARIO_BATCH:
                self._send_batch(batch, start)
                start += len(batch)
                batch = []
        if batch:
            self._send_batch(batch, start)

    def add_messages(self, messages: Iterable[dict[str, Any]]) -> None:
        """Load more resolved scenario messages (a scenario step's ``add_messages``)."""
        batch = list(messages)
        for start in range(0, len(batch), SCENARIO_BATCH):
            self._send_batch(batch[start : start + SCENARIO_BATCH], start)

    def _send_batch(self, batch: list[dict[str, Any]], start: int) -> None:
        self.request("POST", "/scenario/messages", {"messages": batch, "start_index": start}, timeout=max(self._request_timeout, 120))

    def _resolved(self, scenario: dict[str, Any]) -> dict[str, Any]:
        if "now_ms" in scenario and "contacts" in scenario:
            return scenario
        from harness.scenario import Scenario, resolve

        if not isinstance(scenario, Scenario):
            raise TypeError("load_scenario needs a harness.scenario.Scenario or a resolved scenario")
        now_ms = None if "now" in scenario else self.clock_ms()
        return resolve(scenario, now_ms)

    # --- backups ---------------------------------------------------------------------------------

    def enable_backups(self, tier: str = "free") -> str:
        key = self.request("POST", "/backups/enable", {"tier": tier})["recovery_key"]
        self._remember_secret(key)
        return key

    def back_up_now(self, timeout: float = 60.0) -> BackupResult:
        reply = self.request("POST", "/backups/run", {"wait": True, "timeout_s": timeout}, timeout=timeout + WAIT_MARGIN)
        return BackupResult(
            ok=bool(reply["ok"]),
            backup_time_ms=reply.get("backup_time_ms"),
            archive_size=reply.get("archive_size"),
            error=reply.get("error"),
        )

    def backup_status(self) -> BackupStatus:
        reply = self.request("GET", "/backups/status")
        return BackupStatus(
            enabled=reply["enabled"],
            tier=reply["tier"],
            last_backup_ms=reply["last_backup_ms"],
            next_backup_ms=reply["next_backup_ms"],
            error=reply["error"],
            backup_hour=reply["backup_hour"],
            backup_minute=reply["backup_minute"],
        )

    def regenerate_recovery_key(self) -> str:
        key = self.request("POST", "/backups/regenerate-key", timeout=max(self._request_timeout, 60))["recovery_key"]
        self._remember_secret(key)
        return key

    def disable_backups(self) -> None:
        self.request("POST", "/backups/disable", timeout=max(self._request_timeout, 60))

    def restore(self, recovery_key_entry: str, timeout: float = 60.0) -> RestoreResult:
        self._remember_secret(recovery_key_entry)
        reply = self.request(
            "POST", "/restore", {"recovery_key": recovery_key_entry, "timeout_s": timeout}, timeout=timeout + WAIT_MARGIN
        )
        return RestoreResult(ok=bool(reply["ok"]), error=reply.get("error"), error_kind=reply.get("error_kind"))

    def set_tier(self, tier: str) -> None:
        self.request("POST", "/backups/tier", {"tier": tier})

    def set_backup_time(self, hour: int, minute: int) -> int | None:
        return self.request("POST", "/backups/time", {"hour": hour, "minute": minute})["next_backup_ms"]

    def refresh_now(self) -> dict[str, Any]:
        return self.request("POST", "/backups/refresh", timeout=max(self._request_timeout, 60))

    # --- user actions beyond the base interface --------------------------------------------------

    def send_message(self, chat: str, text: str | None = None, **details: Any) -> int:
        return self.request("POST", "/messages/send", {"chat": chat, "text": text, **details})["sent_at_ms"]

    def receive_message(self, chat: str, text: str | None = None, **details: Any) -> int:
        return self.request("POST", "/messages/receive", {"chat": chat, "text": text, **details})["sent_at_ms"]

    def mark_read(self, chat: str) -> int:
        return self.request("POST", "/messages/read", {"chat": chat})["read"]

    def delete_message(self, *, chat: str | None = None, sent_at_ms: int | None = None,
                       scenario_id: str | None = None, for_everyone: bool = False) -> None:
        self.request(
            "POST",
            "/messages/delete",
            {"chat": chat, "sent_at_ms": sent_at_ms, "scenario_id": scenario_id, "for_everyone": for_everyone},
        )

    def chats(self) -> list[dict[str, Any]]:
        return self.request("GET", "/chats")["chats"]

    # --- clock ---------------------------------------------------------------------------------------

    def clock_ms(self) -> int:
        return int(self.request("GET", "/clock")["epoch_ms"])

    def set_clock(self, epoch_ms: int, timezone: str | None = None) -> None:
        self.request("POST", "/clock", {"epoch_ms": epoch_ms, "timezone": timezone})

    def advance_clock(self, delta_ms: int) -> None:
        self.request("POST", "/clock/advance", {"delta_ms": delta_ms})

    # --- observation -----------------------------------------------------------------------------------

    def visible_messages(self) -> list[VisibleMessage]:
        return [_visible(entry) for entry in self.request("GET", "/messages", timeout=max(self._request_timeout, 120))["messages"]]

    def log_position(self) -> LogPosition:
        try:
            return LogPosition(self.log_path.stat().st_size)
        except FileNotFoundError:
            return LogPosition(0)

    def read_log(self, since: LogPosition | None = None) -> list[LogLine]:
        return _read_log_file(self.log_path, since.offset if since else 0)

    def wait_for_log(self, pattern: str, since: LogPosition, timeout: float) -> LogLine:
        regex = re.compile(pattern)
        if not self.running:
            for line in self.read_log(since):
                if regex.search(line.text):
                    return line
            raise DeviceError(f"the reference app is not running, and no log line after {since.offset} matches {pattern!r}")
        reply = self.request(
            "GET", "/log/wait", params={"pattern": pattern, "since": since.offset, "timeout_s": timeout}, timeout=timeout + WAIT_MARGIN
        )
        line = reply["line"]
        return LogLine(LogPosition(line["offset"]), line["text"])

    def snapshot_files(self, destination: Path) -> Path:
        destination = Path(destination)
        target = destination / "app-data"
        if target.exists():
            shutil.rmtree(target)
        if self.data_dir.is_dir():
            shutil.copytree(self.data_dir, target)
        else:
            target.mkdir(parents=True)
        return target

    def message_store_paths(self) -> list[str]:
        # The attachment files (plaintext and thumbnails) are part of the message store.
        return ["messages.db", "messages.db-journal", "attachments"]

    def key_store_paths(self) -> list[str]:
        return ["keystore.json"]

    def capture_artifacts(self, destination: Path) -> None:
        """Save the log tail, the backup settings and the stderr tail, with recovery keys redacted."""
        destination = Path(destination)
        destination.mkdir(parents=True, exist_ok=True)
        lines = self.read_log()[-ARTIFACT_LOG_LINES:]
        (destination / "app.log").write_text(self._redact("\n".join(line.text for line in lines) + "\n"), encoding="utf-8")
        settings = self.data_dir / "settings.json"
        if settings.is_file():
            (destination / "settings.json").write_text(self._redact(settings.read_text(encoding="utf-8")), encoding="utf-8")
        (destination / "app.stderr").write_text(self._redact(self._stderr_tail(20000)), encoding="utf-8")

    # --- helpers --------------------------------------------------------------------------------------

    def _remember_secret(self, key: str) -> None:
        compact = re.sub(r"[^0-9A-Za-z]", "", key)
        if compact:
            self._secrets.add(compact.lower())

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            for form in (secret, secret.upper(), " ".join(secret.upper()[i : i + 4] for i in range(0, len(secret), 4))):
                text = text.replace(form, "[recovery key redacted]")
        return text

    def _stderr_tail(self, limit: int = 2000) -> str:
        try:
            text = self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no stderr)"
        tail = text[-limit:].strip()
        return self._redact(tail) if tail else "(stderr is empty)"


def _visible(entry: dict[str, Any]) -> VisibleMessage:
    return VisibleMessage(
        chat=entry["chat"],
        author=entry["author"],
        direction=entry["direction"],
        sent_at_ms=entry["sent_at_ms"],
        text=entry["text"],
        view_once=entry["view_once"],
        expires_in_ms=entry["expires_in_ms"],
        expire_start_ms=entry["expire_start_ms"],
        attachments=tuple(
            VisibleAttachment(
                file_name=item["file_name"],
                content_type=item["content_type"],
                size=item["size"],
                available=item["available"],
                sha256=item["sha256"],
            )
            for item in entry["attachments"]
        ),
        reactions=tuple(entry["reactions"]),
        quote_text=entry["quote_text"],
        deleted=entry["deleted"],
    )


def _read_log_file(path: Path, since: int) -> list[LogLine]:
    try:
        with open(path, "rb") as handle:
            handle.seek(since)
            data = handle.read()
    except FileNotFoundError:
        return []
    lines: list[LogLine] = []
    offset = since
    for raw in data.splitlines(keepends=True):
        if not raw.endswith(b"\n"):
            break
        lines.append(LogLine(LogPosition(offset), raw.rstrip(b"\n").decode("utf-8", "replace")))
        offset += len(raw)
    return lines


def _first_line(process: subprocess.Popen[str], timeout: float) -> str | None:
    """Return the first stdout line of ``process``, or None if it exits or times out first."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        lines.put(process.stdout.readline() or None)

    threading.Thread(target=read, daemon=True).start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        return None
    return line.strip() if line else None


def _drain(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    for _ in process.stdout:
        pass


def _stop_process(process: subprocess.Popen[str]) -> int | None:
    try:
        return process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.terminate()
    try:
        return process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()
