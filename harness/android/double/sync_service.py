"""The device side of adb's file sync protocol (``adb push``/``pull``/``ls``/stat).

After ``sync:`` the client sends requests made of a 4-byte id and a little-endian length,
followed by that many bytes (a path). Replies: ``STAT`` mode/size/mtime; ``DENT`` entries then
``DONE`` for LIST; ``DATA`` chunks then ``DONE`` for RECV; ``OKAY`` or ``FAIL`` after a SEND.
"""

from __future__ import annotations

import logging
import posixpath
import socket
import stat as stat_module
import struct

from harness.android.double.device import SimulatedDevice
from harness.android.double.filesystem import ROOT, SHELL, FileSystemError, normalize
from harness.android.double.wire import ClientGone, recv_exact, sync_header

log = logging.getLogger(__name__)

MAX_CHUNK = 64 * 1024
MAX_PATH = 1024


def serve_sync(device: SimulatedDevice, sock: socket.socket) -> None:
    """Serve sync requests until QUIT or the client closes the connection."""
    who = ROOT if device.adbd_root else SHELL
    while True:
        try:
            header = recv_exact(sock, 8)
        except ClientGone:
            return
        request, length = header[:4], struct.unpack("<I", header[4:])[0]
        if length > MAX_PATH and request != b"QUIT":
            _fail(sock, "path too long")
            return
        path = recv_exact(sock, length).decode("utf-8", errors="replace") if length else ""
        log.debug("sync %s %s on %s", request.decode(errors="replace"), path, device.serial)
        if request == b"STAT":
            _stat(device, who, sock, path)
        elif request == b"LIST":
            _list(device, who, sock, path)
        elif request == b"RECV":
            _recv(device, who, sock, path)
        elif request == b"SEND":
            _send(device, who, sock, path)
        elif request == b"QUIT":
            return
        else:
            _fail(sock, f"unknown sync request {request!r}")
            return


def _fail(sock: socket.socket, message: str) -> None:
    data = message.encode("utf-8")
    sock.sendall(sync_header(b"FAIL", len(data)) + data)


def _stat(device: SimulatedDevice, who, sock: socket.socket, path: str) -> None:
    try:
        result = device.fs.stat(who, normalize(path))
        values = (stat_module.S_IFMT(result.st_mode) | stat_module.S_IMODE(result.st_mode),
                  result.st_size & 0xFFFFFFFF, int(result.st_mtime))
    except FileSystemError:
        values = (0, 0, 0)
    sock.sendall(b"STAT" + struct.pack("<III", *values))


def _list(device: SimulatedDevice, who, sock: socket.socket, path: str) -> None:
    directory = normalize(path)
    try:
        names = [".", ".."] + device.fs.listdir(who, directory)
    except FileSystemError:
        names = []
    for name in names:
        if name == ".":
            target = directory
        elif name == "..":
            target = posixpath.dirname(directory)
        else:
            target = posixpath.join(directory, name)
        try:
            result = device.fs.host_path(target).stat()
        except (OSError, FileSystemError):
            continue
        encoded = name.encode("utf-8")
        sock.sendall(b"DENT" + struct.pack("<IIII", result.st_mode, result.st_size & 0xFFFFFFFF,
                                           int(result.st_mtime), len(encoded)) + encoded)
    sock.sendall(b"DONE" + struct.pack("<IIII", 0, 0, 0, 0))


def _recv(device: SimulatedDevice, who, sock: socket.socket, path: str) -> None:
    try:
        data = device.fs.read_bytes(who, normalize(path))
    except FileSystemError as error:
        _fail(sock, f"open failed: {error.reason}")
        return
    for start in range(0, len(data), MAX_CHUNK):
        chunk = data[start:start + MAX_CHUNK]
        sock.sendall(sync_header(b"DATA", len(chunk)) + chunk)
    sock.sendall(sync_header(b"DONE", 0))


def _send(device: SimulatedDevice, who, sock: socket.socket, spec: str) -> None:
    path, _, mode_text = spec.rpartition(",")
    if not path:
        path, mode_text = spec, "33188"
    try:
        mode = int(mode_text)
    except ValueError:
        mode = 0o100644
    received = bytearray()
    while True:
        request, length = recv_exact(sock, 4), struct.unpack("<I", recv_exact(sock, 4))[0]
        if request == b"DATA":
            if length > MAX_CHUNK:
                _fail(sock, "data chunk too large")
                return
            received.extend(recv_exact(sock, length))
        elif request == b"DONE":
            break
        else:
            _fail(sock, f"unexpected {request!r} during SEND")
            return
    target = normalize(path)
    try:
        if device.fs.is_dir(target):
            raise FileSystemError(target, "Is a directory")
        device.fs.write_bytes(who, target, bytes(received), mode=mode)
    except FileSystemError as error:
        _fail(sock, f"couldn't create file: {error.reason}")
        return
    sock.sendall(sync_header(b"OKAY", 0))
