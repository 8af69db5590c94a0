"""An Android phone or emulator as a target, driven through adb (adbutils) and uiautomator2.

``AndroidTarget`` drives the app as a tester does: it installs the APK, taps through the
screens the app profile names, waits on logcat, reaches the stub through ``adb reverse`` and
reads the app's files with ``run-as`` or root. The profile (``fixtures/profiles/*.yaml``) holds
everything app-specific; this module holds none of it.

Session resources and their teardown (``close``): the logcat service (started at ``install``),
the uiautomator2 server, the reverse rule to the stub, and the clock and radio settings, which
are restored. Device, adb and UI-server failures raise ``InfrastructureError`` subclasses; a
refused debug action raises ``ActionRejectedError`` as the reference target does.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness import keys
from harness.android.actions import ActionRunner, StepContext
from harness.android.artifacts import capture_bugreport, capture_failure_artifacts
from harness.android.clock import DeviceClock
from harness.android.device import AndroidDevice, connect, select_serials
from harness.android.files import AppFiles
from harness.android.logcat import LogcatService
from harness.android.message_list import read_visible_messages
from harness.android.network import DeviceNetwork
from harness.android.packages import AppPackage, apply_permissions
from harness.android.pcap import PcapFinding, scan_pcap
from harness.android.profile import Profile, load_profile
from harness.android.redaction import Redactor
from harness.android.reverse import ReverseTunnel
from harness.android.ui import DeviceUi
from harness.archive import read_header
from harness.archive_metadata import decrypt_forward_secrecy_token
from harness.errors import InfrastructureError, MacMismatchError, UsageError
from harness.targets.base import (
    Account, BackupResult, BackupStatus, LogLine, LogPosition, RestoreResult, StubEndpoints, Target, VisibleMessage,
)

log = logging.getLogger(__name__)

SCENARIO_BATCH = 500
# The reference app's SVR-B stand-in (reference_app/forward_secrecy.py documents it):
# enc_salt = HMAC-SHA256(backup key, label || pw_salt).
STAND_IN_LABEL = b"ReferenceApp SVR-B stand-in:"


class AndroidTarget(Target):
    """One app on one device; ``profile`` names the app profile (default: reference-double)."""

    name = "android"

    def __init__(
        self,
        *,
        serial: str | None = None,
        adb_server: str | None = None,
        apk: Path | str | None = None,
        profile: str | Path | None = None,
        work_dir: Path | str,
        command_timeout: float = 60.0,
        reconnect_timeout: float = 30.0,
        pcap: Path | str | None = None,
    ) -> None:
        self.profile: Profile = load_profile(profile)
        self.pcap = Path(pcap) if pcap else None
        self.apk = Path(apk) if apk else None
        if self.apk is not None and not self.apk.is_file():
            raise UsageError(f"--apk {self.apk}: file not found")
        serials = select_serials([serial] if serial else None)
        if len(serials) > 1:
            raise UsageError(f"the Android target drives one device, got {', '.join(serials)}; "
                             "use `backup-harness farm` for several")
        self.serial = serials[0] if serials else None
        self.adb_server = adb_server
        self.work_dir = Path(work_dir)
        self.command_timeout = command_timeout
        self.reconnect_timeout = reconnect_timeout
        self.redactor = Redactor()
        self._device: AndroidDevice | None = None
        self._parts: dict[str, Any] = {}
        self._launch_extras: dict[str, Any] = {}
        self._config_file: tuple[str, str] | None = None
        self._tunnel: ReverseTunnel | None = None

    def __repr__(self) -> str:
        return f"AndroidTarget(serial={self.serial!r}, profile={self.profile.name!r})"

    # Session parts ------------------------------------------------------------------------------
    @property
    def device(self) -> AndroidDevice:
        if self._device is None:
            self._device = connect(self.adb_server, self.serial, command_timeout=self.command_timeout,
                                   reconnect_timeout=self.reconnect_timeout)
            self.serial = self._device.serial
        return self._device

    def _part(self, name: str, factory: Callable[[], Any]) -> Any:
        if name not in self._parts:
            self._parts[name] = factory()
        return self._parts[name]

    @property
    def app(self) -> AppPackage:
        return self._part("app", lambda: AppPackage(self.device, self.profile.package))

    @property
    def ui(self) -> DeviceUi:
        return self._part("ui", lambda: DeviceUi(self.device, redactor=self.redactor,
                                                 dump_dir=self.work_dir / "ui-dumps"))

    @property
    def logcat(self) -> LogcatService:
        return self._part("logcat", lambda: LogcatService(self.device, redactor=self.redactor))

    @property
    def files(self) -> AppFiles:
        return self._part("files", lambda: AppFiles(self.device, self.profile.package))

    @property
    def clock(self) -> DeviceClock:
        return self._part("clock", lambda: DeviceClock(self.device))

    @property
    def network(self) -> DeviceNetwork:
        return self._part("network", lambda: DeviceNetwork(self.device))

    @property
    def runner(self) -> ActionRunner:
        return self._part("runner", lambda: ActionRunner(self.profile, self.device, self.app, self.ui, self.logcat,
                                                         self.files, self.redactor, lambda: dict(self._launch_extras)))

    # Lifecycle --------------------------------------------------------------------------------------
    def install(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if not self.logcat.is_alive:
            self.logcat.start()
        if self.apk is not None:
            self.app.install(self.apk)
        elif not self.app.is_installed():
            raise UsageError(f"{self.profile.package} is not installed on {self.device.serial}; pass --apk "
                             "with the build to test")
        # Every target starts from a cleared app, as from a fresh install (a reinstall keeps data).
        self.app.clear_data()
        apply_permissions(self.app, self.profile.grants, self.profile.revokes)
        log.info("%s ready on %s (profile %s, verified on: %s)", self.profile.package, self.device.serial,
                 self.profile.name, ", ".join(self.profile.verified_on) or "not yet run on a real build")

    def start(self) -> None:
        self._write_config_file()
        self.runner.run_steps("launch", [{"launch": {}}], {})
        self.runner.run_steps("ready", self.profile.steps("ready"), {})

    def stop(self) -> None:
        if self._device is not None:
            self.app.stop()

    def wipe(self) -> None:
        self.app.clear_data()
        apply_permissions(self.app, self.profile.grants, self.profile.revokes)
        log.info("%s data cleared on %s", self.profile.package, self.device.serial)

    def close(self) -> None:
        """Stop the app and release every session resource; the device's settings are restored."""
        if self._device is None:
            return
        steps: list[tuple[str, Callable[[], None]]] = [
            ("stop the app", self.stop),
            ("stop the ui server", lambda: self._parts["ui"].close() if "ui" in self._parts else None),
            ("remove the reverse rule", lambda: self._tunnel.close() if self._tunnel else None),
            ("restore the clock", lambda: self._parts["clock"].restore() if "clock" in self._parts else None),
            ("restore the radios", lambda: self._parts["network"].restore() if "network" in self._parts else None),
            ("stop logcat", lambda: self._parts["logcat"].stop() if "logcat" in self._parts else None),
        ]
        for what, step in steps:
            try:
                step()
            except InfrastructureError as error:
                log.warning("closing the target on %s: could not %s: %s", self.serial, what, error)

    # Setup --------------------------------------------------------------------------------------------
    def point_at(self, stub: StubEndpoints) -> None:
        parts = urlsplit(stub.url)
        if parts.port is None:
            raise UsageError(f"stub url {stub.url} has no port; the device reaches the stub through adb reverse")
        spec = self.profile.point_at
        if self._tunnel is not None:
            self._tunnel.close()
        self._tunnel = ReverseTunnel(self.device, parts.port, int(spec.get("device_port") or 0) or None).start()
        device_url = self._tunnel.device_url(parts.scheme) + parts.path.rstrip("/")
        variables = {"url": device_url, "zk_public_params": stub.zk_public_params}
        if "launch_extras" in spec:
            self._launch_extras = self.runner.fill(dict(spec["launch_extras"]), _context(self.runner, variables))
        if "config_file" in spec:
            filled = self.runner.fill(dict(spec["config_file"]), _context(self.runner, variables))
            self._config_file = (str(filled["path"]), str(filled["content"]))
        if spec.get("steps"):
            self.runner.run_steps("point_at", spec["steps"], variables)
        if self._launch_extras or self._config_file:
            self.stop()
            self.start()

    def _write_config_file(self) -> None:
        if self._config_file is None:
            return
        path, content = self._config_file
        self.runner.run_steps("point_at", [{"push_file": {"content": content, "path": path, "app_private": True}}], {})

    def register_account(self, account: Account) -> None:
        self.runner.run_action("register_account", aci=account.aci, e164=account.e164,
                               device_id=account.device_id, password=account.password)

    def load_scenario(self, scenario: dict[str, Any]) -> None:
        spec = self.profile.data.get("load_scenario")
        if not spec:
            raise UsageError(f"app profile {self.profile.path.name} has no load_scenario section")
        resolved = self._resolved(scenario)
        payload = {key: resolved[key] for key in ("name", "now_ms", "self", "contacts", "groups", "chats")}
        payload["messages"] = list(resolved["messages"])
        self.runner.run_steps("load_scenario", spec["steps"], {"scenario": payload})

    def _resolved(self, scenario: dict[str, Any]) -> dict[str, Any]:
        if "now_ms" in scenario and "contacts" in scenario:
            return scenario
        from harness.scenario import Scenario, resolve

        if not isinstance(scenario, Scenario):
            raise TypeError("load_scenario needs a harness.scenario.Scenario or a resolved scenario")
        now_ms = None if "now" in scenario else self.clock_ms()
        return resolve(scenario, now_ms)

    # Backups ------------------------------------------------------------------------------------------
    def enable_backups(self, tier: str = "free") -> str:
        return self._key(self.runner.run_action("enable_backups", tier=tier))

    def back_up_now(self, timeout: float = 60.0) -> BackupResult:
        result = self.runner.run_action("back_up_now", timeout=timeout)
        return BackupResult(ok=bool(result["ok"]), backup_time_ms=result.get("backup_time_ms"),
                            archive_size=result.get("archive_size"), error=result.get("error"))

    def backup_status(self) -> BackupStatus:
        result = self.runner.run_action("read_backup_status")
        return BackupStatus(enabled=bool(result["enabled"]), tier=result.get("tier"),
                            last_backup_ms=result.get("last_backup_ms"), next_backup_ms=result.get("next_backup_ms"),
                            error=result.get("error"), backup_hour=result.get("backup_hour"),
                            backup_minute=result.get("backup_minute"))

    def regenerate_recovery_key(self) -> str:
        return self._key(self.runner.run_action("regenerate_key"))

    def disable_backups(self) -> None:
        self.runner.run_action("disable_backups")

    def restore(self, recovery_key_entry: str, timeout: float = 60.0) -> RestoreResult:
        self.redactor.add(recovery_key_entry)
        result = self.runner.run_action("restore", recovery_key_entry=recovery_key_entry, timeout=timeout)
        return RestoreResult(ok=bool(result["ok"]), error=result.get("error"), error_kind=result.get("error_kind"))

    def _key(self, variables: dict[str, Any]) -> str:
        key = str(variables["recovery_key"])
        self.redactor.add(key)
        return key

    # Actions a profile may offer (None when it does not; the suite then skips) ------------------------
    def _optional(self, name: str, call: Callable[..., Any]) -> Callable[..., Any] | None:
        return call if self.profile.has_action(name) else None

    @property
    def set_tier(self) -> Callable[[str], None] | None:
        def choose(tier: str) -> None:
            self.runner.run_action("choose_tier", tier=tier)
        return self._optional("choose_tier", choose)

    @property
    def set_backup_time(self) -> Callable[[int, int], int | None] | None:
        return self._optional("set_backup_time", lambda hour, minute: self.runner.run_action(
            "set_backup_time", hour=hour, minute=minute).get("next_backup_ms"))

    @property
    def refresh_now(self) -> Callable[[], dict[str, Any]] | None:
        return self._optional("refresh_now", lambda: self.runner.run_action("refresh_now").get("reply") or {})

    @property
    def add_messages(self) -> Callable[[Iterable[dict[str, Any]]], None] | None:
        def add(messages: Iterable[dict[str, Any]]) -> None:
            batch = list(messages)
            if batch:
                self.runner.run_action("add_messages", messages=batch, start_index=0)
        return self._optional("add_messages", add)

    @property
    def delete_message(self) -> Callable[..., None] | None:
        def delete(*, chat: str | None = None, sent_at_ms: int | None = None, scenario_id: str | None = None,
                   for_everyone: bool = False) -> None:
            self.runner.run_action("delete_message", chat=chat, sent_at_ms=sent_at_ms, scenario_id=scenario_id,
                                   for_everyone=for_everyone)
        return self._optional("delete_message", delete)

    @property
    def send_message(self) -> Callable[..., int] | None:
        return self._optional("send_message", lambda chat, text=None, **details: self.runner.run_action(
            "send_message", message={"chat": chat, "text": text, **details})["sent_at_ms"])

    @property
    def receive_message(self) -> Callable[..., int] | None:
        return self._optional("receive_message", lambda chat, text=None, **details: self.runner.run_action(
            "receive_message", message={"chat": chat, "text": text, **details})["sent_at_ms"])

    @property
    def mark_read(self) -> Callable[[str], int] | None:
        return self._optional("mark_read", lambda chat: self.runner.run_action("mark_read", chat=chat)["read"])

    @property
    def forward_secrecy_token(self) -> Callable[[Path, str], bytes] | None:
        """How the suite recovers a modern archive's token; None when the profile cannot."""
        if self.profile.forward_secrecy_token != "reference-stand-in":
            return None
        return _stand_in_token

    @property
    def scan_packets(self) -> Callable[[Mapping[str, bytes]], list[PcapFinding]] | None:
        """Search the emulator's packet capture for needles; None without ``pcap``."""
        if self.pcap is None:
            return None
        capture = self.pcap
        return lambda needles: scan_pcap(capture, needles)

    # Clock --------------------------------------------------------------------------------------------
    def clock_ms(self) -> int:
        return self.clock.now_ms()

    def set_clock(self, epoch_ms: int, timezone: str | None = None) -> None:
        self.clock.set(epoch_ms, timezone)
        self.runner.run_steps("after_clock_change", self.profile.steps("after_clock_change"), {})

    def advance_clock(self, delta_ms: int) -> None:
        self.clock.advance(delta_ms)
        self.runner.run_steps("after_clock_change", self.profile.steps("after_clock_change"), {})

    # Observation --------------------------------------------------------------------------------------
    def visible_messages(self) -> list[VisibleMessage]:
        return read_visible_messages(self.runner)

    def log_position(self) -> LogPosition:
        return self.logcat.position()

    def read_log(self, since: LogPosition | None = None) -> list[LogLine]:
        return self.logcat.read(since)

    def wait_for_log(self, pattern: str, since: LogPosition, timeout: float) -> LogLine:
        return self.logcat.wait_for(self.profile.log_patterns.get(pattern, pattern), since, timeout)

    def snapshot_files(self, destination: Path) -> Path:
        target = Path(destination) / "app-data"
        self.files.pull(target)
        return target

    def message_store_paths(self) -> list[str]:
        return self.profile.message_store

    def capture_artifacts(self, destination: Path) -> None:
        """Save screenshot (or the secure-window note), window dump and logcat, secrets masked."""
        session = self._parts["ui"].session if "ui" in self._parts else None
        capture_failure_artifacts(self.device, Path(destination), ui=session, logcat=self.logcat,
                                  redactor=self.redactor)

    def capture_bugreport(self, destination: Path) -> Path:
        """Run ``bugreportz`` and save the zip (secrets masked) into ``destination``."""
        return capture_bugreport(self.device, Path(destination) / "bugreport.zip", self.redactor)


def _context(runner: ActionRunner, variables: dict[str, Any]) -> StepContext:
    return StepContext("point_at", {**runner.base_variables(), **variables})


def _stand_in_token(path: Path, recovery_key: str) -> bytes:
    """Recover a modern archive's token the way the reference app's SVR-B stand-in stores it."""
    header = read_header(path)
    if header.metadata is None:
        raise MacMismatchError(f"{path} has no metadata header to recover the forward-secrecy token from")
    backup_key = keys.derive_backup_key(keys.normalize_recovery_key(recovery_key))
    for index, pair in enumerate(header.metadata.pairs):
        enc_salt = hmac.new(backup_key, STAND_IN_LABEL + pair.pw_salt, "sha256").digest()
        try:
            return decrypt_forward_secrecy_token(backup_key, header.metadata, enc_salt, index)
        except MacMismatchError:
            continue
    raise MacMismatchError("no forward-secrecy token in the archive header opens with this recovery key")
