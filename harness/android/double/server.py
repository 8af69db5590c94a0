"""A fake adb server on a loopback port, speaking the adb host protocol to real clients.

adbutils, uiautomator2 and the ``adb`` command-line client connect to it as to the adb server
on port 5037. Host services (``host:version``, ``host:devices-l``, ``host:track-devices``,
``host:tport:serial:S``, ``host-serial:S:forward:...``, ``wait-for-...``) are handled here.
After a transport is selected, device services (``shell:``, ``shell,v2:``, ``exec:``,
``sync:``, ``reverse:...``, ``tcp:PORT``, ``localabstract:NAME``, ``root:``) go to the chosen
:class:`SimulatedDevice`.

One service exists only in the double, for tests that run it in another process:
``host:double-fault:SERIAL:FAULT[:ARGS]`` arms a fault (see :func:`apply_fault`).
"""

from __future__ import annotations

import logging
import re
import select
import shutil
import socket
import socketserver
import tempfile
import threading
import time
from pathlib import Path

from harness.android.double import commands  # noqa: F401  (registers the shell commands)
from harness.android.double import reference_host  # noqa: F401  (registers the reference-app runtime)
from harness.android.double import ui_server  # noqa: F401  (registers app_process)
from harness.android.double.device import ActiveConnection, SimulatedDevice
from harness.android.double.faults import FAULT_NAMES
from harness.android.double.filesystem import ROOT, SHELL
from harness.android.double.shell import ShellInterpreter
from harness.android.double.sync_service import serve_sync
from harness.android.double.wire import (
    SHELL_EXIT, SHELL_STDERR, SHELL_STDOUT, ClientGone, block, read_request, send_fail,
    send_okay, shell_packet,
)

log = logging.getLogger(__name__)

ADB_SERVER_VERSION = 41
DEVICE_FEATURES = ("shell_v2", "cmd", "stat_v2", "ls_v2", "fixed_push_mkdir", "apex", "abb",
                   "fixed_push_symlink_timestamp", "abb_exec", "remount_shell", "track_app",
                   "sendrecv_v2", "sendrecv_v2_brotli", "sendrecv_v2_lz4", "sendrecv_v2_zstd",
                   "sendrecv_v2_dry_run_send")


class AdbDouble:
    """The fake adb server and the devices it presents. Binds 127.0.0.1 only."""

    def __init__(self, port: int = 0) -> None:
        self._devices: dict[str, SimulatedDevice] = {}
        self._transport_ids: dict[str, int] = {}
        self._owned_roots: list[Path] = []
        self._forwards: dict[str, tuple[str, str, socket.socket]] = {}  # local -> (serial, remote, listener)
        self._lock = threading.RLock()
        self.traffic: list[tuple[str | None, str]] = []  # (serial or None for host requests, request)
        self._server = _ThreadingServer(("127.0.0.1", port), _ConnectionHandler)
        self._server.double = self
        self._thread: threading.Thread | None = None

    # Lifecycle ------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> AdbDouble:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="adb-double", daemon=True)
        self._thread.start()
        log.info("adb double listening on %s", self.address)
        return self

    def stop(self) -> None:
        """Stop serving, cut every device stream and delete the device roots it created."""
        self._server.shutdown()
        self._server.server_close()
        for device in list(self._devices.values()):
            for runtime in list(device.runtimes.values()):
                runtime.stop()
            device.go_offline()
        with self._lock:
            for _, _, listener in self._forwards.values():
                listener.close()
            self._forwards.clear()
        for root in self._owned_roots:
            shutil.rmtree(root, ignore_errors=True)
        log.info("adb double on %s stopped", self.address)

    def __enter__(self) -> AdbDouble:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Devices ----------------------------------------------------------------------------------
    def add_device(self, serial: str = "emulator-5554", *, root: Path | None = None,
                   emulator: bool = True, rooted: bool | None = None) -> SimulatedDevice:
        """Attach a simulated device; its files live under ``root`` (a new temp dir if None)."""
        if root is None:
            root = Path(tempfile.mkdtemp(prefix=f"adb-double-{serial}-"))
            self._owned_roots.append(root)
        device = SimulatedDevice(serial, root, emulator=emulator, rooted=rooted)
        with self._lock:
            self._devices[serial] = device
            self._transport_ids[serial] = len(self._transport_ids) + 1
        return device

    def remove_device(self, serial: str) -> None:
        """Detach a device as if its cable were pulled: it disappears from ``adb devices``."""
        with self._lock:
            device = self._devices.pop(serial, None)
        if device is not None:
            device.go_offline()

    def device(self, serial: str) -> SimulatedDevice:
        return self._devices[serial]

    @property
    def devices(self) -> list[SimulatedDevice]:
        with self._lock:
            return list(self._devices.values())

    def record(self, serial: str | None, request: str) -> None:
        """Keep every request in ``traffic``, so tests can check what a client sent."""
        with self._lock:
            self.traffic.append((serial, request))

    def requests_to(self, serial: str) -> list[str]:
        """Return the device services requested on ``serial``, in order."""
        with self._lock:
            return [request for owner, request in self.traffic if owner == serial]

    def transport_id(self, serial: str) -> int:
        return self._transport_ids[serial]

    def find(self, serial: str | None = None, transport_id: int | None = None) -> SimulatedDevice | str:
        """Return the device, or the adb server's error text when there is none."""
        with self._lock:
            if transport_id is not None:
                for name, number in self._transport_ids.items():
                    if number == transport_id and name in self._devices:
                        return self._devices[name]
                return f"no device with transport id '{transport_id}'"
            if serial is None:
                online = [device for device in self._devices.values() if device.state == "device"]
                if len(online) == 1:
                    return online[0]
                return "no devices/emulators found" if not online else "more than one device/emulator"
            device = self._devices.get(serial)
            return device if device is not None else f"device '{serial}' not found"

    def device_list_text(self, extended: bool) -> str:
        lines = []
        for device in self.devices:
            if extended:
                # adb replaces spaces in these values with underscores.
                props = {key: value.replace(" ", "_") for key, value in device.properties.items()}
                lines.append(f"{device.serial:<22} {device.state} product:{props['ro.product.name']} "
                             f"model:{props['ro.product.model']} device:{props['ro.product.device']} "
                             f"transport_id:{self._transport_ids[device.serial]}")
            else:
                lines.append(f"{device.serial}\t{device.state}")
        return "".join(line + "\n" for line in lines)

    # Host-side forwards -----------------------------------------------------------------------
    def add_forward(self, device: SimulatedDevice, local: str, remote: str, norebind: bool) -> str | None:
        """Listen on host ``tcp:PORT`` and connect each client to ``remote`` on the device."""
        if not local.startswith("tcp:"):
            return f"cannot bind listener: only tcp: is supported by the double ({local})"
        with self._lock:
            if local in self._forwards:
                if norebind:
                    return "cannot rebind existing socket"
                self._forwards.pop(local)[2].close()
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind(("127.0.0.1", int(local[4:])))
            except (OSError, ValueError) as error:
                listener.close()
                return f"cannot bind listener: {error}"
            listener.listen(8)
            self._forwards[local] = (device.serial, remote, listener)
        threading.Thread(target=self._accept_forward, args=(listener, device, remote), daemon=True,
                         name=f"forward-{local}").start()
        return None

    def remove_forward(self, serial: str | None, local: str | None) -> bool:
        with self._lock:
            keys = [key for key, (owner, _, _) in self._forwards.items()
                    if (serial is None or owner == serial) and (local is None or key == local)]
            for key in keys:
                self._forwards.pop(key)[2].close()
        return bool(keys)

    def forward_list_text(self, serial: str | None) -> str:
        with self._lock:
            return "".join(f"{owner} {local} {remote}\n" for local, (owner, remote, _) in self._forwards.items()
                           if serial is None or owner == serial)

    def _accept_forward(self, listener: socket.socket, device: SimulatedDevice, remote: str) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            handler = device.listeners.get(remote)
            if handler is None or device.state != "device":
                client.close()
                continue
            connection = ActiveConnection(client)
            threading.Thread(target=_serve_device_socket, args=(device, handler, connection),
                             daemon=True).start()


class _ThreadingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    double: AdbDouble


class _ConnectionHandler(socketserver.BaseRequestHandler):
    """One client connection: host requests, then possibly one device service."""

    request: socket.socket
    server: _ThreadingServer

    def handle(self) -> None:
        double = self.server.double
        sock = self.request
        try:
            device: SimulatedDevice | None = None
            while device is None:
                request = read_request(sock)
                log.debug("adb double request %r", request)
                double.record(None, request)
                outcome = _host_service(double, sock, request)
                if outcome is None:
                    return
                device = outcome
            request = read_request(sock)
            double.record(device.serial, request)
            _device_service(double, device, sock, request)
        except (ClientGone, ConnectionError, BrokenPipeError, OSError) as error:
            log.debug("adb double connection ended: %s", error)


# Host services ------------------------------------------------------------------------------
_SERIAL_PREFIX = re.compile(r"^host-serial:(?P<serial>.+?):(?P<command>[a-z\-]+(?::.*)?)$")


def _host_service(double: AdbDouble, sock: socket.socket, request: str) -> SimulatedDevice | None:
    """Handle a host request; return the device when the request selected a transport."""
    if request == "host:version":
        send_okay(sock, f"{ADB_SERVER_VERSION:04x}")
    elif request in ("host:devices", "host:devices-l"):
        send_okay(sock, double.device_list_text(request.endswith("-l")))
    elif request in ("host:track-devices", "host:track-devices-l"):
        _track_devices(double, sock, request.endswith("-l"))
    elif request == "host:kill":
        send_okay(sock)
        threading.Thread(target=double.stop, daemon=True).start()
    elif request == "host:list-forward":
        send_okay(sock, double.forward_list_text(None))
    elif request == "host:killforward-all":
        double.remove_forward(None, None)
        sock.sendall(b"OKAYOKAY")
    elif request.startswith("host:double-fault:"):
        _double_fault(double, sock, request[len("host:double-fault:"):])
    elif request.startswith(("host:transport", "host:tport:")):
        return _select_transport(double, sock, request)
    elif request.startswith("host-transport-id:"):
        number, _, command = request[len("host-transport-id:"):].partition(":")
        found = double.find(transport_id=int(number) if number.isdigit() else -1)
        return _scoped(double, sock, found, command)
    elif request.startswith(("host:wait-for-", "host-serial:")):
        if request.startswith("host:"):
            return _scoped(double, sock, double.find(None), request[len("host:"):])
        match = _SERIAL_PREFIX.match(request)
        if match is None:
            send_fail(sock, f"invalid host request: {request}")
            return None
        serial, command = match["serial"], match["command"]
        if command.startswith("wait-for-"):
            _wait_for(double, sock, serial, command)
            return None
        return _scoped(double, sock, double.find(serial), command)
    else:
        send_fail(sock, f"unknown host service: {request}")
    return None


def _select_transport(double: AdbDouble, sock: socket.socket, request: str) -> SimulatedDevice | None:
    if request.startswith("host:tport:serial:"):
        found = double.find(request[len("host:tport:serial:"):])
    elif request.startswith("host:transport-id:"):
        number = request[len("host:transport-id:"):]
        found = double.find(transport_id=int(number) if number.isdigit() else -1)
    elif request.startswith("host:transport:"):
        found = double.find(request[len("host:transport:"):])
    elif request.startswith("host:tport:any") or request == "host:transport-any":
        found = double.find(None)
    else:
        send_fail(sock, f"unknown host service: {request}")
        return None
    if isinstance(found, str):
        send_fail(sock, found)
        return None
    if found.state != "device":
        send_fail(sock, f"device {found.state}")
        return None
    sock.sendall(b"OKAY")
    if request.startswith("host:tport:"):
        sock.sendall(double.transport_id(found.serial).to_bytes(8, "little"))
    return found


def _scoped(double: AdbDouble, sock: socket.socket, found: SimulatedDevice | str, command: str) -> None:
    """Handle a host service about one device (``host-serial:S:...``)."""
    if isinstance(found, str):
        send_fail(sock, found)
        return None
    device = found
    if command == "get-state":
        send_okay(sock, device.state)
    elif command == "get-serialno":
        send_okay(sock, device.serial)
    elif command == "get-devpath":
        send_okay(sock, f"usb:{double.transport_id(device.serial)}-1" if not device.emulator else "unknown")
    elif command == "features":
        send_okay(sock, ",".join(DEVICE_FEATURES))
    elif command.startswith("forward:"):
        _forward(double, sock, device, command[len("forward:"):])
    elif command == "list-forward":
        send_okay(sock, double.forward_list_text(device.serial))
    elif command.startswith("killforward:"):
        if double.remove_forward(device.serial, command[len("killforward:"):]):
            sock.sendall(b"OKAYOKAY")
        else:
            send_fail(sock, f"listener '{command[len('killforward:'):]}' not found")
    elif command == "killforward-all":
        double.remove_forward(device.serial, None)
        sock.sendall(b"OKAYOKAY")
    elif command.startswith("wait-for-"):
        _wait_for(double, sock, device.serial, command)
    else:
        send_fail(sock, f"unknown host service: {command}")
    return None


def _forward(double: AdbDouble, sock: socket.socket, device: SimulatedDevice, spec: str) -> None:
    norebind = spec.startswith("norebind:")
    if norebind:
        spec = spec[len("norebind:"):]
    local, _, remote = spec.partition(";")
    if not local or not remote:
        send_fail(sock, f"malformed forward spec '{spec}'")
        return
    error = double.add_forward(device, local, remote, norebind)
    if error:
        send_fail(sock, error)
    else:
        sock.sendall(b"OKAYOKAY")


def _wait_for(double: AdbDouble, sock: socket.socket, serial: str | None, command: str) -> None:
    """Reply OKAY to ``wait-for-TRANSPORT-STATE`` once the device reaches the state."""
    state = command.rsplit("-", 1)[-1]
    wanted = {"device": "device", "disconnect": "absent"}.get(state, state)
    sock.setblocking(True)
    while True:
        found = double.find(serial) if serial else double.find(None)
        current = found.state if isinstance(found, SimulatedDevice) else "absent"
        if current == wanted:
            sock.sendall(b"OKAYOKAY")
            return
        readable, _, _ = select.select([sock], [], [], 0.1)
        if readable and not sock.recv(1, socket.MSG_PEEK):
            return  # the client gave up (its timeout ran out)


def _track_devices(double: AdbDouble, sock: socket.socket, extended: bool) -> None:
    sock.sendall(b"OKAY")
    last = None
    while True:
        text = double.device_list_text(extended)
        if text != last:
            sock.sendall(block(text))
            last = text
        readable, _, _ = select.select([sock], [], [], 0.2)
        if readable and not sock.recv(1, socket.MSG_PEEK):
            return


def apply_fault(double: AdbDouble, serial: str, name: str, args: list[str]) -> str:
    """Arm a fault on a device; return a one-line confirmation or raise ValueError."""
    device = double.find(serial)
    if isinstance(device, str):
        raise ValueError(device)
    faults = device.faults
    if name == "offline":
        duration = float(args[0]) if args and args[0] else None
        device.go_offline(duration)
        return f"{serial} offline"
    if name == "online":
        device.come_online()
        return f"{serial} online"
    if name == "offline-on" and len(args) >= 2:
        faults.offline_duration_s = float(args[0])
        faults.offline_on_pattern = ":".join(args[1:])
        return f"{serial} goes offline on /{faults.offline_on_pattern}/"
    if name == "slow-shell" and args:
        faults.shell_delay_s = float(args[0])
        faults.shell_delay_pattern = ":".join(args[1:]) or None
        return f"{serial} shell delayed by {faults.shell_delay_s:g} s"
    if name == "ui-crash":
        return f"{serial} ui server crashed" if device.crash_ui_server() else f"{serial} has no ui server running"
    if name == "ui-crash-on" and args:
        faults.ui_crash_on_method = args[0]
        return f"{serial} ui server crashes on {args[0]}"
    if name == "clear":
        faults.clear()
        return f"{serial} faults cleared"
    raise ValueError(f"unknown fault {name!r} or missing arguments; known: {', '.join(FAULT_NAMES)}, online")


def _double_fault(double: AdbDouble, sock: socket.socket, spec: str) -> None:
    serial, _, rest = spec.partition(":")
    name, *args = rest.split(":")
    try:
        send_okay(sock, apply_fault(double, serial, name, args))
    except ValueError as error:
        send_fail(sock, str(error))


# Device services ---------------------------------------------------------------------------
def _device_service(double: AdbDouble, device: SimulatedDevice, sock: socket.socket, request: str) -> None:
    log.debug("device %s service %r", device.serial, request)
    if device.state != "device":
        send_fail(sock, f"device {device.state}")
        return
    connection = ActiveConnection(sock)
    device.register(connection)
    try:
        if request.startswith(("shell:", "shell,", "exec:")):
            _shell_service(device, connection, request)
        elif request == "sync:":
            sock.sendall(b"OKAY")
            serve_sync(device, sock)
        elif request.startswith("reverse:"):
            _reverse_service(device, sock, request[len("reverse:"):])
        elif request.startswith(("tcp:", "localabstract:", "localfilesystem:", "localreserved:", "dev:")):
            handler = device.listeners.get(request)
            if handler is None:
                send_fail(sock, "closed")
                return
            sock.sendall(b"OKAY")
            handler(sock, connection.closed)
        elif request in ("root:", "unroot:"):
            _root_service(device, sock, request == "root:")
        else:
            send_fail(sock, f"unknown service: {request}")
    finally:
        device.unregister(connection)


def _serve_device_socket(device: SimulatedDevice, handler, connection: ActiveConnection) -> None:
    device.register(connection)
    try:
        handler(connection.sock, connection.closed)
    except OSError:
        pass
    finally:
        device.unregister(connection)
        connection.sock.close()


class _StreamSink:
    """Writes command output to the client: raw bytes, or shell-v2 packets of one stream id."""

    def __init__(self, sock: socket.socket, packet_id: int | None, lock: threading.Lock) -> None:
        self.sock = sock
        self.packet_id = packet_id
        self.lock = lock

    def write(self, data: bytes) -> int:
        if data:
            with self.lock:
                self.sock.sendall(data if self.packet_id is None else shell_packet(self.packet_id, data))
        return len(data)


def _shell_service(device: SimulatedDevice, connection: ActiveConnection, request: str) -> None:
    service, _, command = request.partition(":")
    v2 = service.startswith("shell,") and "v2" in service.split(",")
    sock = connection.sock
    sock.sendall(b"OKAY")
    _watch_for_close(sock, connection.closed)
    lock = threading.Lock()
    stdout = _StreamSink(sock, SHELL_STDOUT if v2 else None, lock)
    stderr = _StreamSink(sock, SHELL_STDERR if v2 else None, lock)
    if not command.strip():
        stderr.write(b"the adb double has no interactive shell; pass a command\n")
        status = 1
    else:
        status = _run_command(device, connection, command, stdout, stderr)
    if status is None:
        return  # the connection was cut (device offline)
    if v2:
        with lock:
            sock.sendall(shell_packet(SHELL_EXIT, bytes([status & 0xFF])))
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _run_command(device: SimulatedDevice, connection: ActiveConnection, command: str,
                 stdout: _StreamSink, stderr: _StreamSink) -> int | None:
    duration = device.faults.take_offline_trigger(command)
    if duration is not None:
        log.info("fault: %s goes offline on %r for %g s", device.serial, command, duration)
        device.go_offline(duration)
        return None
    delay = device.faults.shell_delay(command)
    if delay and connection.closed.wait(delay):
        return None
    identity = ROOT if device.adbd_root else SHELL
    interpreter = ShellInterpreter(device)
    try:
        return interpreter.run(command, identity=identity, stdout=stdout, stderr=stderr,
                               cancelled=connection.closed)
    except OSError:
        return None  # the client went away while output was being written


def _watch_for_close(sock: socket.socket, closed: threading.Event) -> None:
    """Set ``closed`` when the client closes its side (ends a following logcat, stops a server)."""

    def watch() -> None:
        try:
            while not closed.is_set():
                readable, _, _ = select.select([sock], [], [], 0.2)
                if readable and not sock.recv(4096):
                    break
        except (OSError, ValueError):
            pass
        closed.set()

    threading.Thread(target=watch, daemon=True, name="adb-double-watch").start()


def _reverse_service(device: SimulatedDevice, sock: socket.socket, spec: str) -> None:
    if spec.startswith("forward:"):
        rule = spec[len("forward:"):]
        norebind = rule.startswith("norebind:")
        if norebind:
            rule = rule[len("norebind:"):]
        remote, _, local = rule.partition(";")
        if not remote or not local:
            sock.sendall(b"OKAY")
            send_fail(sock, f"malformed reverse spec '{rule}'")
            return
        with device.lock:
            if norebind and remote in device.reverses:
                sock.sendall(b"OKAY")
                send_fail(sock, "cannot rebind existing socket")
                return
            device.reverses[remote] = local
        device.log("adbd", f"reverse {remote} -> {local}", level="D", pid=300)
        sock.sendall(b"OKAYOKAY")
    elif spec.startswith("killforward:"):
        remote = spec[len("killforward:"):]
        with device.lock:
            removed = device.reverses.pop(remote, None)
        sock.sendall(b"OKAY")
        if removed is None:
            send_fail(sock, f"listener '{remote}' not found")
        else:
            sock.sendall(b"OKAY")
    elif spec == "killforward-all":
        with device.lock:
            device.reverses.clear()
        sock.sendall(b"OKAYOKAY")
    elif spec == "list-forward":
        with device.lock:
            text = "".join(f"host-19 {remote} {local}\n" for remote, local in device.reverses.items())
        send_okay(sock, text)
    else:
        send_fail(sock, f"unknown reverse service: {spec}")


def _root_service(device: SimulatedDevice, sock: socket.socket, root: bool) -> None:
    sock.sendall(b"OKAY")
    if root and device.properties.get("ro.debuggable") != "1":
        sock.sendall(b"adbd cannot run as root in production builds\n")
        return
    if device.adbd_root == root:
        sock.sendall(b"adbd is already running as root\n" if root else b"adbd not running as root\n")
        return
    sock.sendall(b"restarting adbd as root\n" if root else b"restarting adbd as non root\n")
    device.adbd_root = root
    # adbd restarts: the device drops off adb for a moment, as on a real emulator.
    threading.Thread(target=lambda: (time.sleep(0.05), device.go_offline(0.3)), daemon=True).start()
