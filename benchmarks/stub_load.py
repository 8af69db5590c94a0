"""Load benchmark of the stub server: N concurrent clients each upload one archive over TUS.

Each client has its own account and backup id, set up through the real archive API with
libsignal credentials (not timed). Timed: every client, at once, creates a TUS upload and
PATCHes its archive in one request, as Android does. Reported: wall time, throughput,
p50/p99 time per upload, and the stub process's baseline and peak RSS (sampled every 20 ms;
the Node bridge is a separate process and not counted).

Usage: .venv/bin/python benchmarks/stub_load.py [--clients 50] [--size-mb 20] [--json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.stub_process import StubProcess  # noqa: E402
from libsignal_bridge import Bridge  # noqa: E402
from libsignal_bridge.zk import TYPE_MEDIA, TYPE_MESSAGES, ZkClient  # noqa: E402

DAY = 86400
MIB = 1024 * 1024
BLOCK = MIB


class ArchiveBody:
    """A file-like archive of ``size`` bytes that repeats one random 1 MiB block.

    Fifty clients therefore need 50 MiB of memory, not 50 archives. Each client's block differs.
    """

    def __init__(self, size: int):
        self._block = os.urandom(BLOCK)
        self._size = size
        self._position = 0

    def __len__(self) -> int:
        return self._size - self._position

    def read(self, amount: int = -1) -> bytes:
        remaining = self._size - self._position
        if amount < 0 or amount > remaining:
            amount = remaining
        start = self._position % BLOCK
        chunk = self._block[start : start + amount]
        self._position += len(chunk)
        return chunk


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def prepare_client(stub: StubProcess, zk: ZkClient) -> dict[str, object]:
    """Register an account and bind a messages backup id; return its upload form."""
    aci = uuid.uuid4()
    password = uuid.uuid4().hex
    stub.admin.register_account(str(aci), password)
    auth = (f"{aci}.1", password)
    contexts = {}
    for credential_type in (TYPE_MESSAGES, TYPE_MEDIA):
        contexts[credential_type] = zk.create_request_context(os.urandom(32), aci.bytes)
    body = {
        "messagesBackupAuthCredentialRequest": b64(contexts[TYPE_MESSAGES][1]),
        "mediaBackupAuthCredentialRequest": b64(contexts[TYPE_MEDIA][1]),
    }
    assert requests.put(f"{stub.url}/v1/archives/backupid", json=body, auth=auth).status_code == 204
    today = int(stub.admin.now()) // DAY * DAY
    params = {"redemptionStartSeconds": today, "redemptionEndSeconds": today}
    issued = requests.get(f"{stub.url}/v1/archives/auth", params=params, auth=auth).json()
    credential = zk.receive(contexts[TYPE_MESSAGES][0], base64.b64decode(issued["credentials"]["messages"][0]["credential"]), today)
    private_key = os.urandom(32)

    def headers() -> dict[str, str]:
        presentation = zk.present(credential)
        return {"X-Signal-ZK-Auth": b64(presentation), "X-Signal-ZK-Auth-Signature": b64(zk.sign(private_key, presentation))}

    keys = {"backupIdPublicKey": b64(zk.public_key(private_key))}
    assert requests.put(f"{stub.url}/v1/archives/keys", json=keys, headers=headers()).status_code == 204
    form = requests.get(f"{stub.url}/v1/archives/upload/form", headers=headers())
    assert form.status_code == 200, form.text
    return form.json()


def upload(stub: StubProcess, form: dict[str, object], size: int, start: threading.Barrier) -> float:
    session = requests.Session()
    headers = dict(form["headers"], **{"Tus-Resumable": "1.0.0"})
    path = "/" + str(form["signedUploadLocation"]).split("://", 1)[1].split("/", 1)[1]
    body = ArchiveBody(size)
    start.wait()
    began = time.perf_counter()
    created = session.post(stub.url + path, headers=dict(headers, **{"Upload-Defer-Length": "1"}))
    created.raise_for_status()
    location = stub.url + "/" + created.headers["Location"].split("://", 1)[1].split("/", 1)[1]
    patched = session.patch(
        location,
        data=body,
        headers=dict(
            headers,
            **{"Upload-Offset": "0", "Upload-Length": str(size), "Content-Type": "application/offset+octet-stream"},
        ),
        timeout=600,
    )
    if patched.status_code != 204:
        raise RuntimeError(f"upload failed with {patched.status_code}: {patched.text[:200]}")
    return time.perf_counter() - began


class RssSampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self._process = psutil.Process(pid)
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(0.02)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def run(clients: int, size_mb: int) -> dict[str, object]:
    size = size_mb * MIB
    with StubProcess.start(config={"expiry_interval_seconds": 0}) as stub, Bridge() as bridge:
        zk = ZkClient(bridge, stub.admin.zk_public_params())
        setup_began = time.perf_counter()
        forms = [prepare_client(stub, zk) for _ in range(clients)]
        setup_seconds = time.perf_counter() - setup_began
        server = psutil.Process(stub.pid)
        baseline = server.memory_info().rss
        sampler = RssSampler(stub.pid)
        sampler.start()
        start = threading.Barrier(clients)
        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            durations = list(pool.map(lambda form: upload(stub, form, size, start), forms))
        wall = time.perf_counter() - began
        peak = sampler.stop()
        stored = [item for item in stub.admin.objects("backups") if item["path"].endswith("/messageBackup")]
        assert len(stored) == clients and all(item["size"] == size for item in stored)
    total = clients * size
    return {
        "clients": clients,
        "archive_mib": size_mb,
        "total_mib": total / MIB,
        "setup_seconds": round(setup_seconds, 2),
        "wall_seconds": round(wall, 2),
        "throughput_mib_s": round(total / MIB / wall, 1),
        "upload_p50_seconds": round(statistics.median(durations), 2),
        "upload_p99_seconds": round(percentile(durations, 0.99), 2),
        "server_rss_baseline_mib": round(baseline / MIB, 1),
        "server_rss_peak_mib": round(peak / MIB, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent uploading clients (default 50)")
    parser.add_argument("--size-mb", type=int, default=20, help="archive size per client in MiB (default 20)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args()
    result = run(args.clients, args.size_mb)
    if args.json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name:26} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
