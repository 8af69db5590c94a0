"""The packet-capture leak scan: pcap and pcapng, link types, TCP reassembly, the CLI."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest

from harness.android.pcap import (
    LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_RAW, PcapError, flows, read_packets, scan_pcap,
)
from harness.canaries import encodings
from harness.cli import main

CANARY = "canary-7f3a9c2e51d84b06"
KEY = "abcd" * 16


def ipv4(payload: bytes, protocol: int = 6, source: bytes = b"\x0a\x00\x02\x0f",
         destination: bytes = b"\x0a\x00\x02\x02") -> bytes:
    header = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, protocol, 0, source, destination)
    return header + payload


def ipv6(payload: bytes, protocol: int = 6) -> bytes:
    header = struct.pack(">IHBB16s16s", 6 << 28, len(payload), protocol, 64, b"\x00" * 15 + b"\x01", b"\x00" * 15 + b"\x02")
    return header + payload


def tcp(payload: bytes, sequence: int, source_port: int = 40000, destination_port: int = 8080) -> bytes:
    return struct.pack(">HHIIBBHHH", source_port, destination_port, sequence, 0, 5 << 4, 0x18, 65535, 0, 0) + payload


def udp(payload: bytes, source_port: int = 5353, destination_port: int = 53) -> bytes:
    return struct.pack(">HHHH", source_port, destination_port, 8 + len(payload), 0) + payload


def ethernet(packet: bytes, ethertype: int = 0x0800) -> bytes:
    return b"\x52\x54\x00\x12\x35\x02" + b"\x52\x54\x00\x12\x34\x56" + struct.pack(">H", ethertype) + packet


def sll(packet: bytes, ethertype: int = 0x0800) -> bytes:
    return struct.pack(">HHH8sH", 0, 1, 6, b"\x00" * 8, ethertype) + packet


def write_pcap(path: Path, frames: list[bytes], linktype: int = LINKTYPE_ETHERNET, big_endian: bool = False) -> Path:
    order = ">" if big_endian else "<"
    data = struct.pack(order + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for index, frame in enumerate(frames):
        data += struct.pack(order + "IIII", 1_700_000_000 + index, 0, len(frame), len(frame)) + frame
    path.write_bytes(data)
    return path


def write_pcapng(path: Path, frames: list[bytes], linktype: int = LINKTYPE_ETHERNET) -> Path:
    def block(kind: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        length = len(body) + 12
        return struct.pack("<II", kind, length) + body + struct.pack("<I", length)

    data = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    data += block(1, struct.pack("<HHI", linktype, 0, 65535))
    for frame in frames:
        data += block(6, struct.pack("<IIIII", 0, 0, 0, len(frame), len(frame)) + frame)
    path.write_bytes(data)
    return path


def needles(*values: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for value in values:
        for form, data in encodings(value).items():
            found[f"{value[:6]}:{form}"] = data
    return found


def split_request(text: bytes) -> list[bytes]:
    """An HTTP request cut in three segments, sent out of order with a retransmission."""
    first, second, third = text[:30], text[30:45], text[45:]
    return [
        ethernet(ipv4(tcp(first, 1000))),
        ethernet(ipv4(tcp(third, 1000 + len(first) + len(second)))),
        ethernet(ipv4(tcp(second, 1000 + len(first)))),
        ethernet(ipv4(tcp(second, 1000 + len(first)))),  # retransmitted
    ]


REQUEST = f"POST /v1/archives HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nbody={CANARY}&more".encode()


def test_canary_split_across_segments_is_found(tmp_path: Path) -> None:
    capture = write_pcap(tmp_path / "split.pcap", split_request(REQUEST))
    findings = scan_pcap(capture, needles(CANARY))
    assert [finding.match.label for finding in findings] == ["canary:utf8"]
    assert findings[0].flow.describe() == "tcp 10.0.2.15:40000 -> 10.0.2.2:8080"
    assert findings[0].first_packet == 0


def test_reassembly_keeps_retransmitted_bytes_once(tmp_path: Path) -> None:
    capture = write_pcap(tmp_path / "split.pcap", split_request(REQUEST))
    (data,) = [data for _, data in flows(capture).values()]
    assert data == REQUEST


def test_clean_capture_has_no_findings(tmp_path: Path) -> None:
    capture = write_pcap(tmp_path / "clean.pcap", split_request(b"GET / HTTP/1.1\r\n\r\nnothing secret here"))
    assert scan_pcap(capture, needles(CANARY, KEY)) == []


def test_recovery_key_in_display_form_and_gzip(tmp_path: Path) -> None:
    display = " ".join(KEY.upper()[i:i + 4] for i in range(0, 64, 4)).encode()
    body = gzip.compress(b"note=" + display)
    capture = write_pcap(tmp_path / "gzip.pcap", [ethernet(ipv4(tcp(body, 5)))])
    findings = scan_pcap(capture, needles(KEY))
    assert findings
    assert findings[0].match.container.startswith("gzip")


@pytest.mark.parametrize("variant", ["big-endian", "pcapng", "sll", "raw-ipv4", "ipv6", "udp", "vlan"])
def test_formats_and_link_types(tmp_path: Path, variant: str) -> None:
    payload = b"x=" + CANARY.encode()
    path = tmp_path / f"{variant}.cap"
    if variant == "big-endian":
        write_pcap(path, [ethernet(ipv4(tcp(payload, 1)))], big_endian=True)
    elif variant == "pcapng":
        write_pcapng(path, [ethernet(ipv4(tcp(payload, 1)))])
    elif variant == "sll":
        write_pcap(path, [sll(ipv4(tcp(payload, 1)))], linktype=LINKTYPE_LINUX_SLL)
    elif variant == "raw-ipv4":
        write_pcap(path, [ipv4(tcp(payload, 1))], linktype=LINKTYPE_RAW)
    elif variant == "ipv6":
        write_pcap(path, [ethernet(ipv6(tcp(payload, 1)), ethertype=0x86DD)])
    elif variant == "udp":
        write_pcap(path, [ethernet(ipv4(udp(payload), protocol=17))])
    else:
        tagged = ethernet(ipv4(tcp(payload, 1)))
        write_pcap(path, [tagged[:12] + b"\x81\x00\x00\x05" + tagged[12:]])
    assert len(scan_pcap(path, needles(CANARY))) == 1


def test_non_ip_frames_are_skipped(tmp_path: Path) -> None:
    arp = ethernet(b"\x00\x01\x08\x00\x06\x04\x00\x01" + b"\x00" * 20, ethertype=0x0806)
    capture = write_pcap(tmp_path / "arp.pcap", [arp, ethernet(ipv4(tcp(CANARY.encode(), 9)))])
    assert len(list(read_packets(capture))) == 2
    assert len(scan_pcap(capture, needles(CANARY))) == 1


def test_not_a_capture_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(PcapError, match="notes.txt is not a pcap or pcapng file"):
        list(read_packets(path))


def test_truncated_capture_reads_what_it_can(tmp_path: Path) -> None:
    capture = write_pcap(tmp_path / "cut.pcap", [ethernet(ipv4(tcp(CANARY.encode(), 1)))] * 2)
    capture.write_bytes(capture.read_bytes()[:-10])
    assert len(list(read_packets(capture))) == 1


def test_cli_exit_codes(tmp_path: Path, capsys) -> None:
    leaky = write_pcap(tmp_path / "leaky.pcap", split_request(REQUEST))
    clean = write_pcap(tmp_path / "clean.pcap", split_request(b"GET / HTTP/1.1\r\n\r\nnothing"))
    values = tmp_path / "needles.txt"
    values.write_text(f"{CANARY}\n{KEY}\n")
    assert main(["emulator", "scan-pcap", str(leaky), "--needle-file", str(values)]) == 1
    assert "value 1 (utf8) in tcp 10.0.2.15:40000 -> 10.0.2.2:8080" in capsys.readouterr().out
    assert main(["emulator", "scan-pcap", str(clean), "--needle", CANARY]) == 0
    assert main(["emulator", "scan-pcap", str(values), "--needle", CANARY]) == 2
    assert "is not a pcap or pcapng file" in capsys.readouterr().err
    assert main(["emulator", "scan-pcap", str(clean)]) == 2
