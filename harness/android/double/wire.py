"""Framing of the adb host protocol, as the adb server speaks it to its clients.

A client request is four hex digits giving the length, then that many bytes of ASCII
("000chost:version"). The server answers ``OKAY`` or ``FAIL`` followed by a length-prefixed
message. Some services then send a length-prefixed string block; others turn the socket into
a raw stream (shell, sync, device sockets).
"""

from __future__ import annotations

import socket
import struct

OKAY = b"OKAY"
FAIL = b"FAIL"

# Shell protocol v2 packet ids (a 1-byte id and a 4-byte little-endian length precede each).
SHELL_STDIN = 0
SHELL_STDOUT = 1
SHELL_STDERR = 2
SHELL_EXIT = 3
SHELL_CLOSE_STDIN = 4


class ClientGone(Exception):
    """The client closed the connection before a complete request arrived."""


def recv_exact(sock: socket.socket, size: int) -> bytes:
    """Read exactly ``size`` bytes or raise ClientGone."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ClientGone(f"connection closed after {len(chunks)} of {size} bytes")
        chunks.extend(chunk)
    return bytes(chunks)


def read_request(sock: socket.socket) -> str:
    """Read one length-prefixed request string."""
    header = recv_exact(sock, 4)
    try:
        length = int(header.decode("ascii"), 16)
    except (UnicodeDecodeError, ValueError) as error:
        raise ClientGone(f"malformed request length {header!r}") from error
    return recv_exact(sock, length).decode("utf-8", errors="replace")


def block(text: str | bytes) -> bytes:
    """Encode a length-prefixed string block."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return f"{len(data):04x}".encode("ascii") + data


def send_okay(sock: socket.socket, payload: str | bytes | None = None) -> None:
    sock.sendall(OKAY + (block(payload) if payload is not None else b""))


def send_fail(sock: socket.socket, message: str) -> None:
    sock.sendall(FAIL + block(message))


def shell_packet(packet_id: int, payload: bytes) -> bytes:
    return bytes([packet_id]) + struct.pack("<I", len(payload)) + payload


def sync_header(command: bytes, value: int) -> bytes:
    """A sync-protocol header: a 4-byte command id and a 4-byte little-endian number."""
    return command + struct.pack("<I", value)
