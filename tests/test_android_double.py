"""The adb double speaks the adb host protocol as adbutils expects it (real sockets, real client)."""

from __future__ import annotations

import socket
import struct
import threading
import time

import adbutils
import pytest
from android_support import SERIAL, adb_double, sim  # noqa: F401 (fixtures)

from harness.android.double import AdbDouble
from harness.android.double.wire import block


def raw_request(double: AdbDouble, *requests: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", double.port), timeout=3)
    for request in requests:
        sock.sendall(block(request))
    return sock


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.fixture
def client(adb_double: AdbDouble) -> adbutils.AdbClient:
    return adbutils.AdbClient("127.0.0.1", adb_double.port)


def test_version_and_device_list(client: adbutils.AdbClient, adb_double: AdbDouble) -> None:
    adb_double.add_device("R58M123ABC", emulator=False)
    assert client.server_version() == 41
    infos = {info.serial: info for info in client.list(extended=True)}
    assert set(infos) == {SERIAL, "R58M123ABC"}
    assert infos[SERIAL].state == "device"
    assert infos["R58M123ABC"].tags["model"] == "Pixel_7"
    assert infos[SERIAL].transport_id == 1


def test_offline_device_listed_and_refused(client: adbutils.AdbClient, sim) -> None:
    sim.go_offline()
    assert [(info.serial, info.state) for info in client.list()] == [(SERIAL, "offline")]
    with pytest.raises(adbutils.AdbError, match="device offline"):
        client.device(SERIAL).shell("true")


def test_unknown_serial_fails_transport(client: adbutils.AdbClient) -> None:
    with pytest.raises(adbutils.AdbError, match="device 'nope' not found"):
        client.device("nope").shell("true")


def test_shell_v1_and_v2_exit_codes(client: adbutils.AdbClient) -> None:
    device = client.device(SERIAL)
    assert device.shell("echo hello") == "hello"
    v1 = device.shell2("ls /nonexistent")
    assert v1.returncode == 1
    assert "No such file" in v1.output
    v2 = device.shell2("echo out; echo err 2>&1 >/dev/null; nosuch", v2=True)
    assert v2.returncode == 127
    assert v2.stdout == "out\n"
    assert "nosuch: inaccessible or not found" in v2.stderr


def test_shell_v2_packets_on_the_wire(adb_double: AdbDouble) -> None:
    sock = raw_request(adb_double, f"host:transport:{SERIAL}")
    assert sock.recv(4) == b"OKAY"
    sock.sendall(block("shell,v2:echo hi; exit_is_127"))
    data = read_all(sock)
    assert data[:4] == b"OKAY"
    packets = []
    rest = data[4:]
    while rest:
        kind, length = rest[0], struct.unpack("<I", rest[1:5])[0]
        packets.append((kind, rest[5:5 + length]))
        rest = rest[5 + length:]
    assert packets[0] == (1, b"hi\n")
    assert packets[-1] == (3, bytes([127]))


def test_shell_syntax(client: adbutils.AdbClient) -> None:
    device = client.device(SERIAL)
    assert device.shell("false || echo fallback") == "fallback"
    assert device.shell("false && echo never; echo after") == "after"
    assert device.shell("echo 'a  b' \"c $?\"") == "a  b c 0"
    assert device.shell("X=1; echo ${X}y") == "1y"
    assert device.shell("echo one | cat") == "one"
    assert device.shell("echo saved > /data/local/tmp/f; cat /data/local/tmp/f") == "saved"
    assert device.shell("echo more >> /data/local/tmp/f; cat /data/local/tmp/f") == "saved\nmore"
    assert device.shell("echo 'unterminated") .startswith("/system/bin/sh: syntax error")


def test_exec_service_is_binary_safe(adb_double: AdbDouble, client: adbutils.AdbClient) -> None:
    payload = bytes(range(256)) * 4
    client.device(SERIAL).sync.push(payload, "/data/local/tmp/blob.bin")
    sock = raw_request(adb_double, f"host:transport:{SERIAL}")
    assert sock.recv(4) == b"OKAY"
    sock.sendall(block("exec:cat /data/local/tmp/blob.bin"))
    assert read_all(sock) == b"OKAY" + payload


def test_sync_push_stat_list_pull(client: adbutils.AdbClient, tmp_path) -> None:
    sync = client.device(SERIAL).sync
    assert sync.push(b"x" * 70_000, "/data/local/tmp/big.bin", check=True) == 70_000
    info = sync.stat("/data/local/tmp/big.bin")
    assert info.size == 70_000
    names = [entry.path for entry in sync.list("/data/local/tmp")]
    assert names[:2] == [".", ".."]
    assert "big.bin" in names
    assert sync.pull("/data/local/tmp/big.bin", tmp_path / "big.bin") == 70_000
    assert (tmp_path / "big.bin").read_bytes() == b"x" * 70_000
    assert sync.stat("/data/local/tmp/missing").mtime is None


def test_sync_denies_app_data_to_shell(client: adbutils.AdbClient, sim) -> None:
    sim.fs.host_path("/data/data").joinpath("org.example").mkdir()
    sim.fs.host_path("/data/data/org.example").joinpath("secret.db").write_bytes(b"db")
    with pytest.raises(adbutils.AdbError, match="Permission denied"):
        client.device(SERIAL).sync.read_bytes("/data/data/org.example/secret.db")
    with pytest.raises(adbutils.AdbError):
        client.device(SERIAL).sync.push(b"x", "/data/data/org.example/planted")


def test_reverse_rules(client: adbutils.AdbClient, adb_double: AdbDouble) -> None:
    device = client.device(SERIAL)
    device.reverse("tcp:8443", "tcp:50123")
    assert [(item.remote, item.local) for item in device.reverse_list()] == [("tcp:8443", "tcp:50123")]
    assert adb_double.device(SERIAL).reverses == {"tcp:8443": "tcp:50123"}
    with pytest.raises(adbutils.AdbError, match="cannot rebind"):
        device.reverse("tcp:8443", "tcp:1", norebind=True)
    device.reverse_remove("tcp:8443")
    assert device.reverse_list() == []
    with pytest.raises(adbutils.AdbError, match="listener 'tcp:8443' not found"):
        device.reverse_remove("tcp:8443")


def test_forward_reaches_device_socket(client: adbutils.AdbClient, sim) -> None:
    def echo_service(sock: socket.socket, closed: threading.Event) -> None:
        sock.sendall(b"echo:" + sock.recv(100))

    sim.listen("localabstract:echo", echo_service)
    device = client.device(SERIAL)
    local_port = device.forward_port("localabstract:echo")
    assert any(item.local == f"tcp:{local_port}" for item in device.forward_list())
    with socket.create_connection(("127.0.0.1", local_port), timeout=3) as sock:
        sock.sendall(b"ping")
        assert sock.recv(100) == b"echo:ping"
    via_transport = device.create_connection(adbutils.Network.LOCAL_ABSTRACT, "echo")
    via_transport.sendall(b"pong")
    assert via_transport.recv(100) == b"echo:pong"
    via_transport.close()
    device.forward_remove(f"tcp:{local_port}")
    assert device.forward_list() == []


def test_closed_device_port_fails(client: adbutils.AdbClient) -> None:
    with pytest.raises(adbutils.AdbError, match="closed"):
        client.device(SERIAL).create_connection(adbutils.Network.TCP, 9008)


def test_wait_for_device_returns_when_back(client: adbutils.AdbClient, sim) -> None:
    sim.go_offline(0.3)
    started = time.monotonic()
    client.wait_for(SERIAL, state="device", timeout=3)
    assert 0.2 < time.monotonic() - started < 2.5


def test_wait_for_device_times_out(client: adbutils.AdbClient, sim) -> None:
    sim.go_offline()
    with pytest.raises(adbutils.AdbTimeout):
        client.wait_for(SERIAL, state="device", timeout=0.5)


def test_track_devices_reports_changes(client: adbutils.AdbClient, adb_double: AdbDouble) -> None:
    events = client.track_devices()
    first = next(events)
    assert (first.serial, first.status) == (SERIAL, "device")
    adb_double.add_device("emulator-5556")
    second = next(events)
    assert (second.serial, second.present) == ("emulator-5556", True)


def test_going_offline_cuts_streams(client: adbutils.AdbClient, sim) -> None:
    stream = client.device(SERIAL).shell("logcat", stream=True)
    stream.conn.settimeout(3)
    sim.go_offline(1.0)
    assert stream.read_until_close() is not None  # returns at EOF instead of hanging


def test_fault_service_from_another_process(adb_double: AdbDouble, sim) -> None:
    sock = raw_request(adb_double, f"host:double-fault:{SERIAL}:slow-shell:0.4:getprop")
    assert read_all(sock).startswith(b"OKAY")
    assert sim.faults.shell_delay("getprop ro.serialno") == 0.4
    sock = raw_request(adb_double, f"host:double-fault:{SERIAL}:no-such-fault")
    reply = read_all(sock)
    assert reply.startswith(b"FAIL")
    assert b"unknown fault" in reply


def test_root_restarts_adbd(client: adbutils.AdbClient, sim) -> None:
    device = client.device(SERIAL)
    assert "restarting adbd as root" in device.root()
    client.wait_for(SERIAL, state="device", timeout=3)
    time.sleep(0.1)
    client.wait_for(SERIAL, state="device", timeout=3)
    assert device.shell("id").startswith("uid=0(root)")


def test_root_refused_on_production_phone(client: adbutils.AdbClient, adb_double: AdbDouble) -> None:
    adb_double.add_device("R58M123ABC", emulator=False)
    assert "cannot run as root" in client.device("R58M123ABC").root()
