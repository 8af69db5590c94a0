"""Device-suite pieces that run without a device: log times and the packet-capture leak test."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from test_android_pcap import ethernet, ipv4, tcp, write_pcap

from harness import keys
from harness.canaries import KIND_TEXT, Canary, CanarySet
from harness.device_session import SuiteSettings, build_target
from harness.targets.android import AndroidTarget

SUITE_DIR = Path(__file__).resolve().parents[1] / "device_tests"
if str(SUITE_DIR) not in sys.path:
    sys.path.append(str(SUITE_DIR))  # the suite modules import device_support by its bare name

from suite_support_extra import ScheduledRun, log_time_ms  # noqa: E402

MAY_14_2024 = 1_715_652_191_250  # 2024-05-14 02:03:11.250 UTC
CANARY = "canary-5d1e0b7a93c4f862"


def load_suite_module(name: str):
    spec = importlib.util.spec_from_file_location(f"device_suite_{name}", SUITE_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "line, options",
    [
        ("2024-05-14T02:03:11.250Z I BackupJob: backup started trigger=schedule", {}),
        ("1715652191.250  4242  4242 I BackupJob: backup started", {}),
        ("2024-05-14 02:03:11.250  4242  4242 I BackupJob: backup started", {}),
        ("2024-05-14 04:03:11.250  4242  4242 I BackupJob: backup started", {"zone": "Europe/Berlin"}),
        ("05-14 02:03:11.250  4242  4242 I BackupJob: backup started", {"near_ms": MAY_14_2024 + 86_400_000}),
    ],
)
def test_log_time_forms(line, options):
    assert log_time_ms(line, **options) == MAY_14_2024


def test_log_time_yearless_across_new_year():
    new_year = 1_704_067_200_000  # 2024-01-01 00:00:00 UTC
    assert log_time_ms("12-31 23:59:59.999  1  1 I Tag: x", near_ms=new_year) == new_year - 1


@pytest.mark.parametrize(
    "line, options",
    [
        ("backup started", {}),
        ("05-14 02:03:11.250  4242  4242 I BackupJob: backup started", {}),  # no year and no near_ms
        # 2023-07-01: the nearest 02-29 (2024) is more than half a year away
        ("02-29 02:03:11.250  1  1 I Tag: x", {"near_ms": 1_688_169_600_000}),
    ],
)
def test_log_time_absent(line, options):
    assert log_time_ms(line, **options) is None


def test_scheduled_run_reads_logcat_start():
    run = ScheduledRun(MAY_14_2024 - 1_000, "1715652191.250  4242  4242 I BackupJob: backup started trigger=schedule", "")
    assert run.started_ms == MAY_14_2024
    assert run.trigger == "schedule"


# The packet-capture test of device_tests/test_encryption.py ----------------------------------


def capture(path: Path, *payloads: bytes) -> Path:
    frames, sequence = [], 1_000
    for payload in payloads:
        frames.append(ethernet(ipv4(tcp(payload, sequence, destination_port=443))))
        sequence += len(payload)
    return write_pcap(path, frames)


@pytest.fixture
def encryption_case(tmp_path):
    module = load_suite_module("test_encryption")
    key = keys.display_recovery_key(keys.generate_recovery_key())
    run = {"canaries": CanarySet([Canary(CANARY, KIND_TEXT, "messages[0].text", "m1")])}

    def check(*payloads: bytes, pcap: bool = True) -> None:
        path = capture(tmp_path / "emulator.pcap", *payloads) if pcap else None
        target = AndroidTarget(serial="emulator-5554", work_dir=tmp_path / "work", pcap=path)
        module.test_no_canary_or_key_in_packet_capture(run, target, key)

    return check, key


def test_packet_capture_clean_passes(encryption_case):
    check, _ = encryption_case
    check(b"GET /v1/config HTTP/1.1\r\nHost: example.invalid\r\n\r\n")


def test_packet_capture_canary_fails(encryption_case):
    check, _ = encryption_case
    with pytest.raises(pytest.fail.Exception, match=r"tcp 10\.0\.2\.15:40000 -> 10\.0\.2\.2:443 .*text canary"):
        check(b"POST /log HTTP/1.1\r\n\r\nhello " + CANARY.encode())


def test_packet_capture_recovery_key_fails(encryption_case):
    check, key = encryption_case
    compact = keys.normalize_recovery_key(key).encode()
    with pytest.raises(pytest.fail.Exception, match=r"contains the recovery key as "):
        check(b"key=" + compact[:30], compact[30:] + b"&end")  # split across two segments


def test_packet_capture_absent_skips(encryption_case):
    check, _ = encryption_case
    with pytest.raises(pytest.skip.Exception, match=r"no packet capture; pass --pcap"):
        check(pcap=False)


def test_settings_pcap_reaches_android_target(tmp_path):
    path = capture(tmp_path / "emulator.pcap", b"hello")
    target = build_target(SuiteSettings(target="android", serial="emulator-5554", pcap=path), tmp_path / "work")
    assert isinstance(target, AndroidTarget)
    assert target.pcap == path
    assert target.scan_packets is not None
