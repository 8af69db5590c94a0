"""Device selection and the one wrapper through which the harness speaks adb.

Everything the Android target does on a device goes through :class:`AndroidDevice`, which
translates adbutils' exceptions into the typed errors of :mod:`harness.android.errors` and
applies the retry policy in one place: an idempotent request that fails because the device
dropped off or timed out waits once for the device to come back and runs once more. There is
no loop beyond that single retry.

The client never starts an adb server by itself (adbutils would run ``adb start-server`` when
nothing answers): a missing server is reported, because starting one as a side effect would
also start scanning USB and emulator ports the user did not ask about.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shlex
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

import adbutils
from adbutils.errors import AdbConnectionError

from harness.android.errors import (
    AdbCommandError,
    AdbServerUnavailableError,
    AdbTimeoutError,
    DeviceNotFoundError,
    DeviceOfflineError,
)
from harness.errors import UsageError

log = logging.getLogger(__name__)

DEFAULT_ADB_SERVER = "127.0.0.1:5037"
DEFAULT_COMMAND_TIMEOUT = 60.0
DEFAULT_RECONNECT_TIMEOUT = 30.0
# Environment variables that name the device, in the order they are consulted after --serial.
# ANDROID_SERIAL is adb's own; AWS Device Farm sets DEVICEFARM_DEVICE_UDID on its hosts.
SERIAL_ENVIRONMENT_VARIABLES = ("ANDROID_SERIAL", "DEVICEFARM_DEVICE_UDID")

T = TypeVar("T")
# adb server messages that mean the device itself is gone or unusable (not a failed command).
_OFFLINE_MESSAGE = re.compile(
    r"device offline|device '.*' not found|device unauthorized|no devices|connection closed"
    r"|^closed$|device still (connecting|authorizing)", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class AdbServerAddress:
    """Where the adb server listens (``adb -H HOST -P PORT``)."""

    host: str = "127.0.0.1"
    port: int = 5037

    @classmethod
    def parse(cls, text: str) -> AdbServerAddress:
        """Parse ``HOST:PORT`` (or a bare ``PORT``); raise UsageError naming the value."""
        host, _, port_text = text.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        try:
            port = int(port_text)
        except ValueError:
            port = -1
        if not 0 < port < 65536:
            raise UsageError(
                f"invalid adb server address {text!r}: expected HOST:PORT, "
                f"for example {DEFAULT_ADB_SERVER}"
            )
        return cls(host, port)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> AdbServerAddress:
        """Return the address adb itself would use (ANDROID_ADB_SERVER_HOST/PORT)."""
        environ = os.environ if environ is None else environ
        host = environ.get("ANDROID_ADB_SERVER_HOST") or "127.0.0.1"
        port = environ.get("ANDROID_ADB_SERVER_PORT") or "5037"
        return cls.parse(f"{host}:{port}")

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclasses.dataclass(frozen=True)
class AttachedDevice:
    """One row of ``adb devices -l``."""

    serial: str
    state: str
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def describe(self) -> str:
        model = self.tags.get("model")
        return f"{self.serial} ({self.state}{', ' + model if model else ''})"


@dataclasses.dataclass(frozen=True)
class ShellResult:
    """Outcome of one shell command on the device."""

    command: str
    exit_code: int
    stdout: str
    stderr: str = ""

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class _NoSpawnConnection(adbutils.AdbConnection):
    """An adb connection that reports a missing server instead of starting one."""

    def _safe_connect(self) -> socket.socket:
        return self._create_socket()


class HarnessAdbClient(adbutils.AdbClient):
    """adbutils' client, minus the implicit ``adb start-server``."""

    def make_connection(self, timeout: float | None = None) -> adbutils.AdbConnection:
        try:
            connection = _NoSpawnConnection(self.host, self.port)
        except AdbConnectionError as error:
            raise AdbServerUnavailableError(
                f"no adb server answers at {self.host}:{self.port} ({error}); start it with "
                "`adb start-server` or pass --adb-server HOST:PORT"
            ) from error
        except adbutils.AdbTimeout as error:
            raise AdbServerUnavailableError(
                f"connecting to the adb server at {self.host}:{self.port} timed out; check "
                "that `adb devices` works, or pass --adb-server HOST:PORT"
            ) from error
        if timeout:
            connection.conn.settimeout(timeout)
        return connection


def select_serials(
    cli_serials: Iterable[str] | None, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Return the serials to use: --serial values (comma lists allowed), else the environment.

    An empty list means "the only attached device", which :func:`connect` resolves.
    """
    serials: list[str] = []
    for value in cli_serials or ():
        serials.extend(part.strip() for part in value.split(",") if part.strip())
    if serials:
        return list(dict.fromkeys(serials))
    environ = os.environ if environ is None else environ
    for name in SERIAL_ENVIRONMENT_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            return [part.strip() for part in value.split(",") if part.strip()]
    return []


def list_devices(client: HarnessAdbClient) -> list[AttachedDevice]:
    """Return every device the adb server knows, in any state (``adb devices -l``)."""
    try:
        infos = client.list(extended=True)
    except adbutils.AdbTimeout as error:
        raise AdbTimeoutError(f"`adb devices` timed out on {client.host}:{client.port}") from error
    except adbutils.AdbError as error:
        raise AdbServerUnavailableError(
            f"the adb server at {client.host}:{client.port} rejected `adb devices`: {error}"
        ) from error
    return [AttachedDevice(info.serial, info.state, dict(info.tags)) for info in infos]


def _describe_attached(devices: Sequence[AttachedDevice]) -> str:
    if not devices:
        return "no device is attached"
    return "attached: " + ", ".join(device.describe() for device in devices)


def _state_advice(state: str) -> str:
    if state == "unauthorized":
        return "accept the USB debugging prompt on the device, then retry"
    if state == "offline":
        return "reconnect the cable or restart the emulator, then check `adb devices`"
    return "wait until `adb devices` shows it as 'device'"


def connect(
    address: AdbServerAddress | str | None = None,
    serial: str | None = None,
    *,
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
    reconnect_timeout: float = DEFAULT_RECONNECT_TIMEOUT,
) -> AndroidDevice:
    """Open the device ``serial`` (or the only attached one) on the adb server at ``address``.

    Raises DeviceNotFoundError (listing the attached devices) when the serial is not attached,
    DeviceOfflineError when it is attached but not usable, AdbServerUnavailableError when no
    server answers.
    """
    if address is None:
        address = AdbServerAddress.from_environment()
    elif isinstance(address, str):
        address = AdbServerAddress.parse(address)
    client = HarnessAdbClient(address.host, address.port, socket_timeout=command_timeout)
    attached = list_devices(client)
    chosen = _choose(attached, serial, address)
    log.info("using device %s on adb server %s", chosen.serial, address)
    return AndroidDevice(
        client,
        chosen.serial,
        command_timeout=command_timeout,
        reconnect_timeout=reconnect_timeout,
    )


def _choose(
    attached: Sequence[AttachedDevice], serial: str | None, address: AdbServerAddress
) -> AttachedDevice:
    if serial is None:
        online = [device for device in attached if device.state == "device"]
        if len(online) == 1:
            return online[0]
        if not online:
            raise DeviceNotFoundError(
                f"no online device on adb server {address} ({_describe_attached(attached)}); "
                "start an emulator or connect a phone, then check `adb devices`"
            )
        raise DeviceNotFoundError(
            f"several devices are online on adb server {address} "
            f"({_describe_attached(online)}); pass --serial or set ANDROID_SERIAL"
        )
    for device in attached:
        if device.serial == serial:
            if device.state != "device":
                raise DeviceOfflineError(
                    f"device {serial} is {device.state}: {_state_advice(device.state)}"
                )
            return device
    raise DeviceNotFoundError(
        f"device {serial} not found on adb server {address} ({_describe_attached(attached)}); "
        "check --serial or ANDROID_SERIAL against `adb devices`"
    )


def quote_command(args: str | Sequence[str]) -> str:
    """Join ``args`` into one command line for the device's ``sh``."""
    if isinstance(args, str):
        return args
    return shlex.join(str(arg) for arg in args)


class AndroidDevice:
    """One device on one adb server, with typed errors and the single-retry policy."""

    def __init__(
        self,
        client: HarnessAdbClient,
        serial: str,
        *,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
        reconnect_timeout: float = DEFAULT_RECONNECT_TIMEOUT,
    ) -> None:
        self.client = client
        self.serial = serial
        self.command_timeout = command_timeout
        self.reconnect_timeout = reconnect_timeout
        self._features: frozenset[str] | None = None
        self._adb = adbutils.AdbDevice(client, serial=serial)

    def __repr__(self) -> str:
        return f"AndroidDevice(serial={self.serial!r}, adb_server={self.client.host}:{self.client.port})"

    @property
    def adb(self) -> adbutils.AdbDevice:
        """The adbutils device object (for uiautomator2, which takes one)."""
        return self._adb

    # Error translation and retry --------------------------------------------------------
    def translate(self, error: BaseException, what: str, timeout: float | None = None) -> Exception:
        """Map an adbutils or socket exception raised while doing ``what`` to a typed error."""
        if isinstance(error, (AdbServerUnavailableError, DeviceOfflineError, AdbTimeoutError)):
            return error
        if isinstance(error, adbutils.AdbTimeout) or isinstance(error, (socket.timeout, TimeoutError)):
            limit = f" after {timeout:g} s" if timeout else ""
            return AdbTimeoutError(
                f"adb timed out{limit} during {what} on device {self.serial}; the device may be "
                f"overloaded or hung (check `adb -s {self.serial} shell uptime`)"
            )
        text = str(error)
        if isinstance(error, adbutils.AdbError) and not _OFFLINE_MESSAGE.search(text):
            return AdbCommandError(f"adb rejected {what} on device {self.serial}: {text}")
        # A device that vanished, went offline, or a transport socket that dropped mid-request.
        return DeviceOfflineError(
            f"device {self.serial} went offline during {what} ({text or type(error).__name__}); "
            "check the cable or the emulator, then `adb devices`"
        )

    def call(self, what: str, operation: Callable[[], T], *, idempotent: bool = True,
             timeout: float | None = None) -> T:
        """Run ``operation``; after a dropped device or a timeout, wait once and retry once.

        Non-idempotent operations (a relative clock change, a broadcast) are never repeated:
        their first error is raised as is.
        """
        try:
            return self._translated(what, operation, timeout)
        except (DeviceOfflineError, AdbTimeoutError) as first_error:
            if not idempotent:
                raise
            log.warning("%s failed on %s (%s); waiting for the device to reconnect once",
                        what, self.serial, first_error)
            self.wait_online(self.reconnect_timeout)
            log.info("device %s is back; retrying %s once", self.serial, what)
            return self._translated(what, operation, timeout)

    def _translated(self, what: str, operation: Callable[[], T], timeout: float | None) -> T:
        try:
            return operation()
        except (AdbServerUnavailableError, DeviceOfflineError, AdbTimeoutError):
            raise
        except (adbutils.AdbError, OSError, EOFError) as error:
            raise self.translate(error, what, timeout) from error

    def get_state(self) -> str:
        """Return the device state as the adb server reports it (``device``, ``offline``...)."""
        for device in list_devices(self.client):
            if device.serial == self.serial:
                return device.state
        return "absent"

    def wait_online(self, timeout: float) -> None:
        """Block until the device is online again; raise DeviceOfflineError after ``timeout``."""
        try:
            self.client.wait_for(self.serial, state="device", timeout=timeout)
        except adbutils.AdbTimeout as error:
            raise DeviceOfflineError(
                f"device {self.serial} did not come back online within {timeout:g} s; "
                "check `adb devices` and restart the emulator or reconnect the phone"
            ) from error
        except adbutils.AdbError as error:
            raise DeviceOfflineError(
                f"waiting for device {self.serial} failed: {error}; check `adb devices`"
            ) from error
        except (OSError, EOFError) as error:
            raise DeviceOfflineError(
                f"waiting for device {self.serial} failed: {error}; check `adb devices`"
            ) from error
        self._features = None

    # Shell --------------------------------------------------------------------------------
    def features(self) -> frozenset[str]:
        """Return the adb features both sides support (``shell_v2``, ``stat_v2``...)."""
        if self._features is None:
            text = self.call("`adb features`", self.adb.get_features)
            self._features = frozenset(part for part in text.split(",") if part)
        return self._features

    def shell(
        self,
        args: str | Sequence[str],
        *,
        timeout: float | None = None,
        check: bool = True,
        idempotent: bool = True,
    ) -> ShellResult:
        """Run one command line on the device and return its output and exit code.

        With ``check`` a non-zero exit raises AdbCommandError naming the command. Uses the
        shell v2 protocol (separate stderr, real exit codes) when the device supports it.
        """
        command = quote_command(args)
        timeout = timeout or self.command_timeout
        use_v2 = "shell_v2" in self.features()

        def run() -> ShellResult:
            raw = self.adb.shell2(command, timeout=timeout, v2=use_v2)
            stdout = raw.stdout if use_v2 else raw.output
            return ShellResult(command, raw.returncode, stdout, raw.stderr)

        result = self.call(f"`{_short(command)}`", run, idempotent=idempotent, timeout=timeout)
        log.debug("shell %s -> exit %d", _short(command), result.exit_code)
        if check and result.exit_code != 0:
            raise AdbCommandError(
                f"`{_short(command)}` failed on device {self.serial} with exit code "
                f"{result.exit_code}: {_first_line(result.output)}",
                exit_code=result.exit_code,
                output=result.output,
            )
        return result

    def exec_out(self, args: str | Sequence[str], *, timeout: float | None = None) -> bytes:
        """Run a command through adb's ``exec:`` service and return its raw stdout bytes.

        Unlike ``shell:``, ``exec:`` never allocates a terminal, so binary output (a PNG, a
        database file) arrives unchanged. There is no exit code: callers check the content.
        """
        command = quote_command(args)
        timeout = timeout or self.command_timeout

        def run() -> bytes:
            connection = self.adb.open_transport(timeout=timeout)
            try:
                connection.send_command("exec:" + command)
                connection.check_okay()
                return connection.read_until_close(encoding=None)
            finally:
                connection.close()

        return self.call(f"`exec-out {_short(command)}`", run, timeout=timeout)

    def read_output(self, args: str | Sequence[str], *, timeout: float | None = None) -> bytes:
        """Run a command and return its stdout bytes unchanged; raise on a non-zero exit.

        Uses shell v2 (binary-safe without a terminal, with the exit code) when the device
        supports it, else ``exec:`` and treats any output on a failed start as the error.
        """
        command = quote_command(args)
        timeout = timeout or self.command_timeout
        if "shell_v2" not in self.features():
            return self.exec_out(command, timeout=timeout)

        def run() -> tuple[int, bytes, bytes]:
            raw = self.adb.shell2(command, timeout=timeout, encoding=None, v2=True)
            return raw.returncode, raw.stdout, raw.stderr

        exit_code, stdout, stderr = self.call(f"`{_short(command)}`", run, timeout=timeout)
        if exit_code != 0:
            raise AdbCommandError(
                f"`{_short(command)}` failed on device {self.serial} with exit code {exit_code}: "
                f"{_first_line(stderr.decode('utf-8', errors='replace'))}",
                exit_code=exit_code, output=stderr.decode("utf-8", errors="replace"),
            )
        return stdout

    def open_shell_stream(self, args: str | Sequence[str]) -> adbutils.AdbConnection:
        """Start a long-running command (``logcat``) and return its open connection."""
        command = quote_command(args)
        return self.call(f"`{_short(command)}`", lambda: self.adb.shell(command, stream=True))

    def getprop(self, name: str) -> str:
        return self.shell(["getprop", name]).stdout.strip()

    # Files (sync protocol) ----------------------------------------------------------------
    def push(self, source: bytes | os.PathLike[str] | str, remote: str, mode: int = 0o644) -> int:
        """Copy a local file (or bytes) to ``remote`` on the device; return the bytes sent."""
        data = source if isinstance(source, bytes) else None
        path = None if data is not None else os.fspath(source)  # type: ignore[arg-type]

        def run() -> int:
            return self.adb.sync.push(data if data is not None else path, remote, mode=mode, check=True)

        return self.call(f"push to {remote}", run)

    def pull(self, remote: str, local: os.PathLike[str] | str) -> int:
        """Copy the device file ``remote`` to ``local``; return its size."""
        return self.call(f"pull of {remote}", lambda: self.adb.sync.pull_file(remote, local))

    def read_file(self, remote: str) -> bytes:
        """Return the content of a device file readable by the shell user."""
        return self.call(f"read of {remote}", lambda: self.adb.sync.read_bytes(remote))

    def stat(self, remote: str) -> adbutils.FileInfo:
        return self.call(f"stat of {remote}", lambda: self.adb.sync.stat(remote))

    def list_dir(self, remote: str) -> list[adbutils.FileInfo]:
        return self.call(f"listing of {remote}", lambda: self.adb.sync.list(remote))


def _short(command: str, limit: int = 120) -> str:
    return command if len(command) <= limit else command[: limit - 3] + "..."


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return "(no output)"
