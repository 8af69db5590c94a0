"""The reference app hosted on the simulated device, as an installed Android app would run.

``am start`` of the package spawns ``python -m reference_app`` with its data directory at
the device's ``/data/data/<package>`` and its log in a device-level file; the log lines are
copied into the device's logcat (tag = the app's log component). The device clock drives the
app's clock. Launch extras point the app at a server, debug broadcasts stand for a debug
build's test hooks, and :mod:`harness.android.double.reference_screens` turns the app's state
into the screens that uiautomator2 reads and taps.

The debug interface of this double (what the app profile ``reference-double.yaml`` uses):

* launch extras ``harness.server_url`` and ``harness.zk_public_params`` (the stub, as the
  device reaches it: ``http://127.0.0.1:PORT`` through ``adb reverse``);
* broadcasts ``<package>.debug.<NAME>`` to ``<package>/.DebugReceiver``: ``REGISTER``,
  ``LOAD_SCENARIO`` and ``ADD_MESSAGES`` (``path`` of a pushed JSON file), ``DELETE_MESSAGE``,
  ``SEND_MESSAGE``/``RECEIVE_MESSAGE``/``VIEW_MESSAGE``/``REACT``/``EDIT_MESSAGE`` (``path``),
  ``MARK_READ``, ``SET_BACKUP_TIME``, ``REFRESH``. The result code is -1 (RESULT_OK) with the
  reply as JSON result data, or 0 with ``error CODE: message``.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import logging
import queue
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.android.double import commands  # noqa: F401  (pm, for the pre-install)
from harness.android.double.apk import ApkManifest, build_double_apk
from harness.android.double.apps import RUNTIMES, AppRuntime, IntentSpec
from harness.android.double.commands.packages import app_identity
from harness.android.double.filesystem import ROOT, FileSystemError
from harness.android.double.shell import ShellInterpreter
from harness.android.double.loopback import DeviceLoopback, UnreachableUrl
from harness.android.double.reference_control import REQUEST_TIMEOUT_S, AppGone, AppRejected, ControlClient
from harness.android.double.reference_screens import ReferenceUi

if TYPE_CHECKING:
    from harness.android.double.device import SimulatedDevice

log = logging.getLogger(__name__)

REPOSITORY = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 30.0
SCENARIO_BATCH = 500
LOG_POLL_S = 0.05
RESULT_OK = -1
RESULT_CANCELED = 0
_LOG_LINE = re.compile(r"^(?P<stamp>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (?P<level>[VDIWEF]) (?P<tag>[^:]+): (?P<message>.*)$")


class ReferenceAppRuntime(AppRuntime):
    """One installed copy of the reference app on one simulated device."""

    def __init__(self, device: SimulatedDevice, package: str, options: dict[str, Any]) -> None:
        super().__init__(device, package, options)
        self.process: subprocess.Popen[str] | None = None
        self.control: ControlClient | None = None
        self.loopback = DeviceLoopback(device)
        self.ui = ReferenceUi(self)
        self.worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{package}-main")
        state_dir = device.fs.host_path("/data/misc/harness")
        state_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = state_dir / f"{package}.log"
        self.device_file = state_dir / f"{package}.device.json"
        self.stderr_path = state_dir / f"{package}.stderr"
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._tail_stop = threading.Event()
        self._tail_thread: threading.Thread | None = None
        self._lock = threading.RLock()

    @property
    def data_dir(self) -> Path:
        return self.device.fs.host_path(f"/data/data/{self.package}")

    # Process --------------------------------------------------------------------------------
    def start(self, intent: IntentSpec) -> None:
        with self._lock:
            if self.pid is None:
                self._spawn()
        if self.pid is None:
            return
        self.ui.on_launch(intent)
        url = intent.extras.get("harness.server_url")
        if url:
            self.point_at(str(url), str(intent.extras.get("harness.zk_public_params", "")))

    def _spawn(self) -> None:
        command = [sys.executable, "-m", "reference_app", "--data", str(self.data_dir), "--log", str(self.log_path),
                   "--device-file", str(self.device_file), "--json"]
        for defect in self.options.get("defects", []):
            command += ["--defect", str(defect)]
        for option in ("policy", "layout", "seed"):
            if self.options.get(option) is not None:
                command += [f"--{option}", str(self.options[option])]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.stderr_path, "ab") as stderr:
            process = subprocess.Popen(command, cwd=REPOSITORY, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=stderr, text=True)
        line = _first_line(process, START_TIMEOUT_S)
        try:
            url = json.loads(line or "")["control_url"]
        except (ValueError, KeyError, TypeError):
            _terminate(process)
            self.device.log("AndroidRuntime", f"FATAL EXCEPTION: {self.package} did not start: {self._stderr_tail()}",
                            level="E", pid=process.pid)
            return
        threading.Thread(target=_drain, args=(process,), daemon=True).start()
        self.process, self.pid, self.control = process, process.pid, ControlClient(url)
        self.device.log("ActivityManager", f"Start proc {process.pid}:{self.package}/u0a100 for activity", pid=600)
        self._start_tail()
        self.sync_clock()

    def stop(self) -> None:
        with self._lock:
            process, control = self.process, self.control
            self.process, self.control, self.pid = None, None, None
        if process is None:
            return
        if process.poll() is None and control is not None:
            try:
                control.call("POST", "/shutdown", timeout=5)
            except (AppGone, AppRejected):
                process.terminate()
        _terminate(process)
        if control is not None:
            control.close()
        self._stop_tail()
        self.ui.reset()
        self.device.log("ActivityManager", f"Killing {process.pid}:{self.package}: stop", pid=600)

    def on_uninstalled(self) -> None:
        self.stop()
        self.loopback.close()
        self.worker.shutdown(wait=False)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None,
                timeout: float = REQUEST_TIMEOUT_S) -> dict[str, Any]:
        """Send a control request; raise AppGone when the process died (it is then marked stopped)."""
        control = self.control
        if control is None:
            raise AppGone(f"{self.package} is not running")
        try:
            return control.call(method, path, body, timeout)
        except AppGone:
            if self.process is not None and self.process.poll() is not None:
                self.device.log("AndroidRuntime", f"Process {self.package} (pid {self.pid}) has died",
                                level="E", pid=600)
                self.stop()
            raise

    # Device events ------------------------------------------------------------------------------
    def sync_clock(self) -> None:
        try:
            reply = self.request("POST", "/clock", {"epoch_ms": self.device.now_ms(), "timezone": self.device.timezone})
        except (AppGone, AppRejected) as error:
            log.warning("%s: clock sync failed: %s", self.package, error)
            return
        if reply.get("jobs_started"):
            log.info("%s: jobs started after a clock change: %s", self.package, reply["jobs_started"])

    def on_clock_changed(self) -> None:
        self.sync_clock()

    def on_back(self) -> bool:
        return self.ui.back()

    def screen(self):
        return self.ui.screen()

    def point_at(self, url: str, zk_public_params: str) -> None:
        try:
            host_url = self.loopback.host_url(url)
        except UnreachableUrl as error:
            self.device.log("ServerConfig", f"server url rejected: {error}", level="E", pid=self.pid or 1)
            return
        try:
            self.request("POST", "/server", {"url": host_url, "zk_public_params": zk_public_params})
        except (AppGone, AppRejected) as error:
            self.device.log("ServerConfig", f"server url rejected: {error}", level="E", pid=self.pid or 1)

    # Debug broadcasts -----------------------------------------------------------------------------
    def broadcast(self, intent: IntentSpec) -> tuple[int, str | None]:
        prefix = f"{self.package}.debug."
        if not intent.action or not intent.action.startswith(prefix):
            return RESULT_CANCELED, None
        with self._lock:
            if self.pid is None:
                self._spawn()  # a manifest receiver starts the app process, as on Android
        if self.pid is None:
            return RESULT_CANCELED, "error app-not-running: the app did not start"
        name = intent.action[len(prefix):]
        handler = getattr(self, f"_debug_{name.lower()}", None)
        if handler is None:
            return RESULT_CANCELED, f"error unknown-action: {name}"
        try:
            reply = handler(intent.extras)
        except AppRejected as error:
            return RESULT_CANCELED, f"error {error.code}: {error.message}"
        except AppGone as error:
            return RESULT_CANCELED, f"error app-not-running: {error}"
        except (FileSystemError, ValueError, KeyError) as error:
            return RESULT_CANCELED, f"error bad-request: {error}"
        return RESULT_OK, json.dumps(reply, separators=(",", ":"))

    def _read_json(self, extras: dict[str, Any]) -> Any:
        """Read the JSON file named by the ``path`` extra, as the app's uid (a pushed file)."""
        who = app_identity(self.device.packages[self.package])
        return json.loads(self.device.fs.read_bytes(who, str(extras["path"])))

    def _debug_register(self, extras: dict[str, Any]) -> Any:
        body = {key: extras[key] for key in ("aci", "e164", "device_id", "password", "name") if key in extras}
        return self.request("POST", "/account", body)

    def _debug_load_scenario(self, extras: dict[str, Any]) -> Any:
        scenario = self._read_json(extras)
        header = {key: scenario[key] for key in ("name", "now_ms", "self", "contacts", "groups", "chats") if key in scenario}
        counts = self.request("POST", "/scenario", header)
        messages = scenario.get("messages", [])
        for start in range(0, len(messages), SCENARIO_BATCH):
            counts = self.request("POST", "/scenario/messages",
                                  {"messages": messages[start:start + SCENARIO_BATCH], "start_index": start})
        return counts

    def _debug_add_messages(self, extras: dict[str, Any]) -> Any:
        messages = self._read_json(extras)
        offset = int(extras.get("start_index", 0))
        reply: Any = {"added": 0}
        for start in range(0, len(messages), SCENARIO_BATCH):
            reply = self.request("POST", "/scenario/messages",
                                 {"messages": messages[start:start + SCENARIO_BATCH], "start_index": offset + start})
        return reply

    def _debug_delete_message(self, extras: dict[str, Any]) -> Any:
        body = {key: extras.get(key) for key in ("chat", "sent_at_ms", "scenario_id")}
        body["for_everyone"] = bool(extras.get("for_everyone", False))
        return self.request("POST", "/messages/delete", body)

    def _debug_send_message(self, extras: dict[str, Any]) -> Any:
        return self.request("POST", "/messages/send", self._read_json(extras))

    def _debug_receive_message(self, extras: dict[str, Any]) -> Any:
        return self.request("POST", "/messages/receive", self._read_json(extras))

    def _debug_view_message(self, extras: dict[str, Any]) -> Any:
        return self.request("POST", "/messages/view", self._read_json(extras))

    def _debug_react(self, extras: dict[str, Any]) -> Any:
        return self.request("POST", "/messages/react", self._read_json(extras))

    def _debug_edit_message(self, extras: dict[str, Any]) -> Any:
        return self.request("POST", "/messages/edit", self._read_json(extras))

    def _debug_mark_read(self, extras: dict[str, Any]) -> Any:
        return self.request("POST", "/messages/read", {"chat": extras["chat"]})

    def _debug_set_backup_time(self, extras: dict[str, Any]) -> Any:
        return self.request("POST", "/backups/time", {"hour": int(extras["hour"]), "minute": int(extras["minute"])})

    def _debug_refresh(self, extras: dict[str, Any]) -> Any:
        return self.request("POST", "/backups/refresh")

    # Log ----------------------------------------------------------------------------------------
    def _start_tail(self) -> None:
        self._tail_stop.clear()
        self._tail_thread = threading.Thread(target=self._tail, name=f"{self.package}-log", daemon=True)
        self._tail_thread.start()

    def _stop_tail(self) -> None:
        self._tail_stop.set()
        if self._tail_thread is not None:
            self._tail_thread.join(timeout=5)
            self._tail_thread = None
        self._copy_new_lines(None)

    def _tail(self) -> None:
        pid = self.pid
        while not self._tail_stop.wait(LOG_POLL_S):
            self._copy_new_lines(pid)

    def _copy_new_lines(self, pid: int | None) -> None:
        with self._lock:
            try:
                with open(self.log_path, "rb") as handle:
                    handle.seek(self._log_offset)
                    data = handle.read()
            except FileNotFoundError:
                return
            complete = data[: data.rfind(b"\n") + 1]
            self._log_offset += len(complete)
        for raw in complete.decode("utf-8", errors="replace").splitlines():
            self._log_line(raw, pid)

    def _log_line(self, raw: str, pid: int | None) -> None:
        match = _LOG_LINE.match(raw)
        if match is None:
            self.device.logbuffer.append(self.device.now_ms(), pid or 0, "I", self.package, raw)
            return
        moment = dt.datetime.strptime(match["stamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
        self.device.logbuffer.append(round(moment.timestamp() * 1000), pid or 0, match["level"],
                                     match["tag"], match["message"])

    def _stderr_tail(self) -> str:
        try:
            return " ".join(self.stderr_path.read_text(errors="replace").split()[-40:])
        except FileNotFoundError:
            return "(no stderr)"


def _first_line(process: subprocess.Popen[str], timeout: float) -> str | None:
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=lambda: lines.put(process.stdout.readline() if process.stdout else None),
                     daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return None


def _drain(process: subprocess.Popen[str]) -> None:
    if process.stdout is not None:
        for _ in process.stdout:
            pass


def _terminate(process: subprocess.Popen[str]) -> None:
    try:
        process.wait(timeout=15)
        return
    except subprocess.TimeoutExpired:
        process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


RUNTIMES["reference-app"] = ReferenceAppRuntime

REFERENCE_PACKAGE = "org.backupharness.reference"


def build_reference_apk(path: Path, package: str = REFERENCE_PACKAGE) -> Path:
    """Write the APK that installs the hosted reference app on a simulated device."""
    manifest = ApkManifest(
        package=package, version_code=1, version_name="1.0-double", debuggable=True,
        permissions=("android.permission.INTERNET", "android.permission.POST_NOTIFICATIONS"),
        launcher_activity=".MainActivity",
        runtime={"kind": "reference-app", "activities": [".MainActivity", ".BackupsActivity", ".RestoreActivity"]},
    )
    return build_double_apk(path, manifest)


def install_reference_app(device: SimulatedDevice, *, defects: list[str] | tuple[str, ...] = (),
                          policy: str | None = None, layout: str | None = None, seed: int | None = None,
                          package: str = REFERENCE_PACKAGE) -> None:
    """Pre-install the reference app on a device, as a build the harness finds in place."""
    device.app_options[package] = {"defects": list(defects), "policy": policy, "layout": layout, "seed": seed}
    staged = "/data/local/tmp/reference-app.apk"
    with tempfile.TemporaryDirectory() as scratch:
        apk = build_reference_apk(Path(scratch) / "reference.apk", package)
        device.fs.write_bytes(ROOT, staged, apk.read_bytes())
    output = _DeviceShellOutput()
    status = ShellInterpreter(device).run(f"pm install -r -t -g {staged} && rm {staged}", identity=ROOT,
                                          stdout=output, stderr=output, cancelled=threading.Event())
    if status != 0:
        raise RuntimeError(f"installing the reference app on {device.serial} failed: {output.text()}")


class _DeviceShellOutput:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(data)
        return len(data)

    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", errors="replace").strip()
