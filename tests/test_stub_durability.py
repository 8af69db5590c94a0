"""Durability of the stub's archive storage: SIGKILL during uploads, cut uploads, and many
concurrent replacements of one backup id's archive."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness.stub_process import StubProcess
from stub_support import BackupClient, bridge, relocate, tus_upload  # noqa: F401 (fixtures)

pytestmark = pytest.mark.oracle

ARCHIVE_SIZE = 1024 * 1024
CHUNK = 64 * 1024
NO_EXPIRY = {"expiry_interval_seconds": 0}


def start_stub(data_dir) -> StubProcess:
    return StubProcess.start(data_dir, config=NO_EXPIRY)


def read_archive(stub: StubProcess, client: BackupClient, form: dict[str, object]) -> bytes:
    response = requests.get(f"{stub.url}/backups/{form['key']}", headers=client.read_headers())
    assert response.status_code == 200
    return response.content


def create_upload(stub: StubProcess, form: dict[str, object]) -> str:
    headers = dict(form["headers"], **{"Tus-Resumable": "1.0.0", "Upload-Defer-Length": "1"})
    created = requests.post(relocate(stub.url, str(form["signedUploadLocation"])), headers=headers)
    assert created.status_code == 201, created.text
    return relocate(stub.url, created.headers["Location"])


def wait_for_offset(stub: StubProcess, offset: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        uploads = stub.admin.uploads()
        if uploads and (uploads[0]["offset"] or 0) >= offset:
            return
        time.sleep(0.01)
    raise AssertionError(f"the server did not receive {offset} bytes within {timeout} s")


def patch_and_kill(stub: StubProcess, form: dict[str, object], location: str, data: bytes, kill_at: int) -> None:
    """PATCH ``data`` and SIGKILL the server once it has received ``kill_at`` bytes."""

    def body():
        sent = 0
        while sent < kill_at:
            piece = data[sent : min(kill_at, sent + CHUNK)]
            sent += len(piece)
            yield piece
        wait_for_offset(stub, kill_at)
        stub.kill()
        yield data[kill_at:]

    headers = dict(
        form["headers"],
        **{
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": "0",
            "Upload-Length": str(len(data)),
            "Content-Type": "application/offset+octet-stream",
        },
    )
    with pytest.raises(requests.ConnectionError):
        requests.patch(location, data=body(), headers=headers, timeout=30)


@pytest.mark.parametrize("kill_at", [0, 1, ARCHIVE_SIZE // 2, ARCHIVE_SIZE - 1], ids=["create", "1-byte", "half", "all-but-1"])
def test_sigkill_mid_upload_keeps_previous_archive(tmp_path, bridge, kill_at):
    data_dir = tmp_path / "stub"
    stub = start_stub(data_dir)
    try:
        client = BackupClient(stub.url, stub.admin, bridge).setup()
        form = client.upload_form()
        previous = os.urandom(ARCHIVE_SIZE)
        assert tus_upload(stub.url, form, previous).status_code == 204

        location = create_upload(stub, form)
        if kill_at == 0:
            stub.kill()
        else:
            patch_and_kill(stub, form, location, os.urandom(ARCHIVE_SIZE), kill_at)
        assert stub.process.poll() is not None

        stub = start_stub(data_dir)
        client.url, client.admin = stub.url, stub.admin
        assert read_archive(stub, client, form) == previous
        assert stub.admin.object_bytes(f"backups/{form['key']}") == previous
        uploads = stub.admin.uploads()
        assert len(uploads) == 1
        assert uploads[0]["offset"] == kill_at
    finally:
        stub.stop()


def test_resume_after_sigkill_completes_new_archive(tmp_path, bridge):
    data_dir = tmp_path / "stub"
    stub = start_stub(data_dir)
    try:
        client = BackupClient(stub.url, stub.admin, bridge).setup()
        form = client.upload_form()
        assert tus_upload(stub.url, form, os.urandom(1000)).status_code == 204
        replacement = os.urandom(ARCHIVE_SIZE)
        location = create_upload(stub, form)
        patch_and_kill(stub, form, location, replacement, ARCHIVE_SIZE // 2)

        stub = start_stub(data_dir)
        client.url, client.admin = stub.url, stub.admin
        location = relocate(stub.url, location)
        headers = dict(form["headers"], **{"Tus-Resumable": "1.0.0"})
        offset = int(requests.head(location, headers=headers).headers["Upload-Offset"])
        assert offset == ARCHIVE_SIZE // 2
        resumed = requests.patch(
            location,
            data=replacement[offset:],
            headers=dict(
                headers,
                **{
                    "Upload-Offset": str(offset),
                    "Upload-Length": str(len(replacement)),
                    "Content-Type": "application/offset+octet-stream",
                },
            ),
        )
        assert resumed.status_code == 204
        assert read_archive(stub, client, form) == replacement
    finally:
        stub.stop()


@pytest.mark.parametrize("cut_at", [0, 1, 4096, 9999])
def test_cut_upload_keeps_previous_archive(tmp_path, bridge, cut_at):
    with start_stub(tmp_path / "stub") as stub:
        client = BackupClient(stub.url, stub.admin, bridge).setup()
        form = client.upload_form()
        previous = os.urandom(10_000)
        assert tus_upload(stub.url, form, previous).status_code == 204
        stub.admin.add_fault("/upload/backups/*", "cut_upload", method="PATCH", after_bytes=cut_at, count=1)
        with pytest.raises(requests.ConnectionError):
            tus_upload(stub.url, form, os.urandom(10_000))
        assert read_archive(stub, client, form) == previous


def test_concurrent_replacements_leave_one_archive(tmp_path, bridge):
    with start_stub(tmp_path / "stub") as stub:
        client = BackupClient(stub.url, stub.admin, bridge).setup()
        form = client.upload_form()
        payloads = [os.urandom(64 * 1024) for _ in range(50)]
        start = threading.Barrier(50)
        completed: list[int] = []

        def replace(index: int) -> None:
            session = requests.Session()
            start.wait(timeout=30)
            for _ in range(3):
                try:
                    response = tus_upload_lenient(stub.url, form, payloads[index], session)
                except requests.ConnectionError:
                    continue
                if response is not None and response.status_code == 204:
                    completed.append(index)
                    return

        with ThreadPoolExecutor(max_workers=50) as pool:
            list(pool.map(replace, range(50)))

        assert completed
        final = read_archive(stub, client, form)
        assert final in payloads
        assert payloads.index(final) in completed
        stored = stub.admin.objects(f"backups/{form['key'].split('/')[0]}")
        assert [item["size"] for item in stored] == [64 * 1024]
        statuses = {record["status"] for record in stub.admin.recordings(plane="cdn") if record["method"] != "GET"}
        assert statuses <= {201, 204, 404, 409}


def tus_upload_lenient(url: str, form: dict[str, object], data: bytes, session: requests.Session) -> requests.Response | None:
    """Create and PATCH once; None when the create itself is refused (409)."""
    headers = dict(form["headers"], **{"Tus-Resumable": "1.0.0"})
    created = session.post(relocate(url, str(form["signedUploadLocation"])), headers=dict(headers, **{"Upload-Defer-Length": "1"}))
    if created.status_code != 201:
        return None
    return session.patch(
        relocate(url, created.headers["Location"]),
        data=data,
        headers=dict(
            headers,
            **{"Upload-Offset": "0", "Upload-Length": str(len(data)), "Content-Type": "application/offset+octet-stream"},
        ),
    )
