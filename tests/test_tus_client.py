"""The reference app's TUS client against a small TUS double on loopback.

The double implements only what the byte-level checks need: creation with a deferred length,
HEAD for the offset, PATCH with offset checks, and switches to drop a connection half-way or
return a chosen status. Archive API behaviour is tested against the real stub elsewhere.
"""

from __future__ import annotations

import http.server
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reference_app.errors import Forbidden, PayloadTooLarge, ServerUnreachable, UploadFailed
from reference_app.http_api import Timeouts
from reference_app.tus_client import TusClient, UploadForm

TOKEN = "Bearer test-token"


@dataclass
class TusDouble:
    """State of the double: uploads by path, recorded requests, and planted failures."""

    uploads: dict[str, bytearray] = field(default_factory=dict)
    lengths: dict[str, int | None] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    drop_patch_after: int | None = None  # store this many bytes of one PATCH, then hang up
    patch_statuses: list[int] = field(default_factory=list)  # statuses returned to the next PATCHes
    create_status: int = 201


def _handler(state: TusDouble) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _record(self) -> None:
            state.requests.append((self.command, self.path, dict(self.headers.items())))

        def _reply(self, status: int, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Tus-Resumable", "1.0.0")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            self._record()
            if self.headers.get("Authorization") != TOKEN:
                self._reply(401)
                return
            if state.create_status != 201:
                self._reply(state.create_status)
                return
            location = f"{self.path}/object-{len(state.uploads)}"
            state.uploads[location] = bytearray()
            state.lengths[location] = None
            # An absolute Location on another host: the client must keep only its path.
            self._reply(201, {"Location": f"http://cdn.invalid:9{location}", "Upload-Offset": "0"})

        def do_HEAD(self) -> None:
            self._record()
            if self.path not in state.uploads:
                self._reply(404)
                return
            headers = {"Upload-Offset": str(len(state.uploads[self.path])), "Cache-Control": "no-store"}
            if state.lengths[self.path] is not None:
                headers["Upload-Length"] = str(state.lengths[self.path])
            self._reply(200, headers)

        def do_PATCH(self) -> None:
            self._record()
            size = int(self.headers["Content-Length"])
            if state.patch_statuses:
                self.rfile.read(size)
                self._reply(state.patch_statuses.pop(0))
                return
            stored = state.uploads.get(self.path)
            if stored is None:
                self._reply(404)
                return
            if int(self.headers["Upload-Offset"]) != len(stored):
                self.rfile.read(size)
                self._reply(409)
                return
            state.lengths[self.path] = int(self.headers["Upload-Length"])
            if state.drop_patch_after is not None:
                keep, state.drop_patch_after = state.drop_patch_after, None
                stored.extend(self.rfile.read(keep))
                self.close_connection = True
                self.connection.shutdown(2)
                return
            stored.extend(self.rfile.read(size))
            self._reply(204, {"Upload-Offset": str(len(stored))})

    return Handler


@pytest.fixture()
def double():
    state = TusDouble()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def _form(key: str = "backup-dir/messageBackup") -> UploadForm:
    # The form names a host that does not resolve: the configured CDN URL must replace it.
    return UploadForm(
        cdn=3,
        key=key,
        headers={"Authorization": TOKEN, "Upload-Metadata": "filename YmFja3Vw"},
        signed_upload_location="https://cdn.invalid/upload/backups",
    )


def _client(double: TusDouble, **kwargs) -> TusClient:
    return TusClient(double.url, timeouts=Timeouts(connect=2, read=5), resume_backoff_seconds=0, **kwargs)


def _only(double: TusDouble) -> bytes:
    assert len(double.uploads) == 1
    return bytes(next(iter(double.uploads.values())))


def test_upload_sends_tus_headers(double):
    data = bytes(range(256)) * 40

    result = _client(double).upload(_form(), data)

    assert _only(double) == data
    assert result.length == len(data)
    methods = [method for method, _, _ in double.requests]
    assert methods == ["POST", "HEAD", "PATCH"]
    _, create_path, create = double.requests[0]
    assert create_path == "/upload/backups"
    assert create["Upload-Defer-Length"] == "1"
    assert create["Content-Length"] == "0"
    assert create["Tus-Resumable"] == "1.0.0"
    assert create["Upload-Metadata"] == "filename YmFja3Vw"
    _, patch_path, patch = double.requests[2]
    assert patch_path == "/upload/backups/object-0"
    assert patch["Upload-Offset"] == "0"
    assert patch["Upload-Length"] == str(len(data))
    assert patch["Content-Type"] == "application/offset+octet-stream"
    assert patch["Authorization"] == TOKEN


def test_upload_resumes_after_dropped_connection(double):
    data = b"x" * 5000 + b"y" * 5000
    double.drop_patch_after = 3000

    _client(double).upload(_form(), data)

    assert _only(double) == data
    patches = [headers for method, _, headers in double.requests if method == "PATCH"]
    assert [headers["Upload-Offset"] for headers in patches] == ["0", "3000"]
    assert [method for method, _, _ in double.requests].count("HEAD") == 2


def test_upload_in_chunks(double):
    data = bytes(range(256)) * 10

    _client(double, chunk_size=1000).upload(_form(), data)

    assert _only(double) == data
    offsets = [headers["Upload-Offset"] for method, _, headers in double.requests if method == "PATCH"]
    assert offsets == ["0", "1000", "2000"]


def test_upload_from_file(double, tmp_path: Path):
    path = tmp_path / "archive.bin"
    data = b"backup bytes " * 1000
    path.write_bytes(data)

    result = _client(double).upload(_form(), path)

    assert _only(double) == data
    assert result.length == len(data)


def test_upload_from_file_resumes(double, tmp_path: Path):
    path = tmp_path / "archive.bin"
    data = bytes(range(256)) * 64
    path.write_bytes(data)
    double.drop_patch_after = 1000

    _client(double).upload(_form(), path)

    assert _only(double) == data


def test_empty_upload_sends_length_zero(double):
    _client(double).upload(_form(), b"")

    assert _only(double) == b""
    patches = [headers for method, _, headers in double.requests if method == "PATCH"]
    assert len(patches) == 1
    assert patches[0]["Upload-Length"] == "0"


def test_server_error_resumed_then_given_up(double):
    double.patch_statuses = [500, 503, 500, 500]

    with pytest.raises(UploadFailed, match="after 4 attempts"):
        _client(double, max_resume_attempts=3).upload(_form(), b"data")


def test_server_error_then_success(double):
    double.patch_statuses = [503]

    _client(double).upload(_form(), b"data")

    assert _only(double) == b"data"


def test_too_large_not_retried(double):
    double.patch_statuses = [413]

    with pytest.raises(PayloadTooLarge) as raised:
        _client(double).upload(_form(), b"data")

    assert raised.value.status == 413
    assert raised.value.route == "PATCH /upload/backups/object-0"
    assert [method for method, _, _ in double.requests].count("PATCH") == 1


def test_create_rejected_raises_status(double):
    double.create_status = 403

    with pytest.raises(Forbidden) as raised:
        _client(double).upload(_form(), b"data")

    assert raised.value.status == 403
    assert raised.value.route == "POST /upload/backups"


def test_unreachable_cdn_reported():
    client = TusClient("http://127.0.0.1:9", timeouts=Timeouts(connect=1, read=1))

    with pytest.raises(ServerUnreachable, match="127.0.0.1:9"):
        client.upload(_form(), b"data")


def test_resolve_keeps_path_and_query():
    client = TusClient("http://127.0.0.1:8080")

    resolved = client.resolve("https://cdn.example.invalid/upload/attachments/abc?x=1")

    assert resolved == "http://127.0.0.1:8080/upload/attachments/abc?x=1"


def test_form_repr_hides_token():
    assert "test-token" not in repr(_form())
