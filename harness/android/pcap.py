"""Read an emulator packet capture (``emulator -tcpdump FILE``) and scan it for cleartext leaks.

Supports classic pcap (micro- and nanosecond, either byte order) and pcapng (section header,
interface description, enhanced and simple packet blocks), with Ethernet, Linux cooked (SLL,
SLL2), raw IP and BSD loopback link types, IPv4 and IPv6, TCP and UDP. TCP payloads are put
back together per direction by sequence number (retransmitted bytes kept once), so a canary
split across two segments is still found. Each stream is then searched with
``harness.canaries.scan_for``, which also looks inside gzip and deflate data.

Only cleartext can match: TLS-protected traffic shows nothing, which is the point of the scan.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path

from harness.canaries import Match, scan_for
from harness.errors import UsageError

log = logging.getLogger(__name__)

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
_PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": ("<", 1_000), b"\xa1\xb2\xc3\xd4": (">", 1_000),
                b"\x4d\x3c\xb2\xa1": ("<", 1), b"\xa1\xb2\x3c\x4d": (">", 1)}
_PCAPNG_SECTION = 0x0A0D0D0A


@dataclasses.dataclass(frozen=True)
class Packet:
    """One captured frame: its index in the file, capture time and link-layer bytes."""

    index: int
    time_ns: int
    linktype: int
    data: bytes


@dataclasses.dataclass(frozen=True)
class Flow:
    """One direction of a TCP connection or a UDP exchange."""

    protocol: str
    source: str
    destination: str

    def describe(self) -> str:
        return f"{self.protocol} {self.source} -> {self.destination}"


@dataclasses.dataclass(frozen=True)
class PcapFinding:
    """A needle found in the reassembled bytes of one flow."""

    flow: Flow
    match: Match
    first_packet: int

    def describe(self) -> str:
        where = self.match.container + f"@{self.match.offset}"
        return f"{self.match.label} in {self.flow.describe()} ({where}, from packet {self.first_packet})"


class PcapError(UsageError):
    """The file is not a packet capture this reader understands."""


# Files -------------------------------------------------------------------------------------------
def read_packets(path: Path) -> Iterator[Packet]:
    """Yield every frame of a pcap or pcapng file."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise PcapError(f"cannot read packet capture {path}: {error.strerror}") from None
    if len(data) >= 4 and data[:4] in _PCAP_MAGICS:
        yield from _classic(path, data)
    elif len(data) >= 12 and struct.unpack("<I", data[:4])[0] == _PCAPNG_SECTION:
        yield from _pcapng(path, data)
    else:
        raise PcapError(f"{path} is not a pcap or pcapng file (first bytes {data[:4].hex() or 'none'}); "
                        "pass the file the emulator's -tcpdump option wrote")


def _classic(path: Path, data: bytes) -> Iterator[Packet]:
    order, scale = _PCAP_MAGICS[data[:4]]
    if len(data) < 24:
        raise PcapError(f"{path}: truncated pcap header ({len(data)} of 24 bytes)")
    linktype = struct.unpack(order + "I", data[20:24])[0] & 0xFFFF
    offset, index = 24, 0
    while offset + 16 <= len(data):
        seconds, fraction, captured, _ = struct.unpack(order + "IIII", data[offset:offset + 16])
        body = data[offset + 16:offset + 16 + captured]
        if len(body) < captured:
            log.warning("%s: packet %d is truncated (%d of %d bytes); reading stops there", path, index,
                        len(body), captured)
            return
        yield Packet(index, seconds * 1_000_000_000 + fraction * scale, linktype, body)
        offset += 16 + captured
        index += 1


def _pcapng(path: Path, data: bytes) -> Iterator[Packet]:
    order = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    interfaces: list[int] = []
    offset, index = 0, 0
    while offset + 12 <= len(data):
        block_type, length = struct.unpack(order + "II", data[offset:offset + 8])
        if length < 12 or offset + length > len(data):
            log.warning("%s: truncated pcapng block at byte %d; reading stops there", path, offset)
            return
        body = data[offset + 8:offset + length - 4]
        if block_type == _PCAPNG_SECTION:
            order = "<" if body[:4] == b"\x4d\x3c\x2b\x1a" else ">"
            interfaces = []
        elif block_type == 1:  # interface description
            interfaces.append(struct.unpack(order + "H", body[:2])[0])
        elif block_type == 6:  # enhanced packet
            interface, high, low, captured = struct.unpack(order + "IIII", body[:16])
            linktype = interfaces[interface] if interface < len(interfaces) else LINKTYPE_ETHERNET
            # NOTE: assumes the default microsecond timestamp resolution (if_tsresol not read).
            yield Packet(index, ((high << 32) | low) * 1_000, linktype, body[20:20 + captured])
            index += 1
        elif block_type == 3:  # simple packet
            original = struct.unpack(order + "I", body[:4])[0]
            yield Packet(index, 0, interfaces[0] if interfaces else LINKTYPE_ETHERNET, body[4:4 + original])
            index += 1
        offset += length


# Layers ------------------------------------------------------------------------------------------
def _network_layer(packet: Packet) -> tuple[int, bytes] | None:
    """Return (ethertype-like version 4/6, IP packet bytes), or None for non-IP frames."""
    data, kind = packet.data, packet.linktype
    if kind == LINKTYPE_ETHERNET:
        ethertype, data = struct.unpack(">H", data[12:14])[0] if len(data) >= 14 else 0, data[14:]
        while ethertype in (0x8100, 0x88A8) and len(data) >= 4:  # VLAN tags
            ethertype, data = struct.unpack(">H", data[2:4])[0], data[4:]
        return _by_ethertype(ethertype, data)
    if kind == LINKTYPE_LINUX_SLL:
        return _by_ethertype(struct.unpack(">H", data[14:16])[0], data[16:]) if len(data) >= 16 else None
    if kind == LINKTYPE_LINUX_SLL2:
        return _by_ethertype(struct.unpack(">H", data[0:2])[0], data[20:]) if len(data) >= 20 else None
    if kind == LINKTYPE_NULL:
        family = struct.unpack("<I", data[:4])[0] if len(data) >= 4 else 0
        return (4, data[4:]) if family == 2 else (6, data[4:]) if family in (24, 28, 30) else None
    if kind in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        version = data[0] >> 4 if data else 0
        return (version, data) if version in (4, 6) else None
    return None


def _by_ethertype(ethertype: int, data: bytes) -> tuple[int, bytes] | None:
    return {0x0800: (4, data), 0x86DD: (6, data)}.get(ethertype)


def _transport(version: int, data: bytes) -> tuple[int, str, str, bytes] | None:
    """Return (protocol number, source address, destination address, transport bytes)."""
    if version == 4 and len(data) >= 20:
        header = (data[0] & 0x0F) * 4
        total = struct.unpack(">H", data[2:4])[0] or len(data)
        if (struct.unpack(">H", data[6:8])[0] & 0x1FFF) != 0:
            return None  # a later IP fragment carries no transport header
        return data[9], str(ipaddress.IPv4Address(data[12:16])), str(ipaddress.IPv4Address(data[16:20])), \
            data[header:total]
    if version == 6 and len(data) >= 40:
        next_header, offset = data[6], 40
        while next_header in (0, 43, 60) and offset + 8 <= len(data):  # hop-by-hop, routing, options
            next_header, offset = data[offset], offset + (data[offset + 1] + 1) * 8
        length = struct.unpack(">H", data[4:6])[0]
        return next_header, str(ipaddress.IPv6Address(data[8:24])), str(ipaddress.IPv6Address(data[24:40])), \
            data[offset:40 + length]
    return None


# Streams ----------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Stream:
    first_packet: int
    segments: dict[int, bytes] = dataclasses.field(default_factory=dict)

    def add(self, sequence: int, payload: bytes) -> None:
        if payload and len(payload) > len(self.segments.get(sequence, b"")):
            self.segments[sequence] = payload

    def assemble(self) -> bytes:
        """Join segments in sequence order; overlapping (retransmitted) bytes are kept once."""
        if not self.segments:
            return b""
        ordered = sorted(self.segments.items())
        base = ordered[0][0]
        output = bytearray()
        for sequence, payload in ordered:
            position = (sequence - base) & 0xFFFFFFFF
            if position < len(output):
                payload = payload[len(output) - position:]
            elif position > len(output):
                output.extend(b"\x00" * min(position - len(output), 65_536))  # a gap: bytes not captured
            output.extend(payload)
        return bytes(output)


def flows(path: Path) -> dict[Flow, tuple[int, bytes]]:
    """Return each flow's first packet index and its reassembled bytes."""
    streams: dict[Flow, _Stream] = {}
    for packet in read_packets(path):
        network = _network_layer(packet)
        transport = _transport(*network) if network else None
        if transport is None:
            continue
        protocol, source, destination, data = transport
        if protocol == 6 and len(data) >= 20:
            source_port, destination_port, sequence = struct.unpack(">HHI", data[:8])
            header = (data[12] >> 4) * 4
            flow = Flow("tcp", f"{source}:{source_port}", f"{destination}:{destination_port}")
            streams.setdefault(flow, _Stream(packet.index)).add(sequence, data[header:])
        elif protocol == 17 and len(data) >= 8:
            source_port, destination_port = struct.unpack(">HH", data[:4])
            flow = Flow("udp", f"{source}:{source_port}", f"{destination}:{destination_port}")
            stream = streams.setdefault(flow, _Stream(packet.index))
            stream.add(sum(len(segment) for segment in stream.segments.values()), data[8:])
    return {flow: (stream.first_packet, stream.assemble()) for flow, stream in streams.items()}


def scan_pcap(path: Path, needles: Mapping[str, bytes]) -> list[PcapFinding]:
    """Search every flow of a capture for the needles (labels -> byte forms)."""
    findings = []
    captured = flows(path)
    for flow, (first_packet, data) in captured.items():
        for match in scan_for(data, needles):
            findings.append(PcapFinding(flow, match, first_packet))
    log.info("scanned %d flows of %s: %d findings", len(captured), path, len(findings))
    return findings
