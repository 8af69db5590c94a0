"""`backup-harness stub-server`: start-up lines, request logs, signals, TLS, OpenAPI, errors."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

CLI = str(Path(sys.executable).with_name("backup-harness"))

ARCHIVE_ENDPOINTS = {
    ("put", "/v1/archives/backupid"),
    ("get", "/v1/archives/backupid/limits"),
    ("post", "/v1/archives/redeem-receipt"),
    ("get", "/v1/archives/auth"),
    ("put", "/v1/archives/keys"),
    ("get", "/v1/archives"),
    ("post", "/v1/archives"),
    ("delete", "/v1/archives"),
    ("get", "/v1/archives/auth/read"),
    ("get", "/v1/archives/auth/svrb"),
    ("get", "/v1/archives/upload/form"),
    ("get", "/v1/archives/media/upload/form"),
    ("put", "/v1/archives/media"),
    ("put", "/v1/archives/media/batch"),
    ("get", "/v1/archives/media"),
    ("post", "/v1/archives/media/delete"),
}


def start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([CLI, "stub-server", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(process: subprocess.Popen[str], signum: int = signal.SIGTERM) -> tuple[int, str]:
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=20)
    return process.returncode, stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_json_start_logs_and_clean_stop(tmp_path, signum):
    process = start_cli("--json", "--data", str(tmp_path / "data"))
    try:
        line = json.loads(process.stdout.readline())
        assert line["url"].startswith("http://127.0.0.1:")
        assert line["admin_url"].startswith("http://127.0.0.1:")
        assert requests.get(line["url"] + "/v1/subscription/configuration").status_code == 200
        assert requests.get(line["admin_url"] + "/__harness/health").json()["ok"] is True
    finally:
        status, stderr = stop(process, signum)
    assert status == 0
    assert "INFO server_stub.requests: GET /v1/subscription/configuration -> 200" in stderr
    assert "stub server stopped" in stderr
    assert "Traceback" not in stderr


def test_plain_output_names_both_urls(tmp_path):
    process = start_cli("--data", str(tmp_path / "data"))
    try:
        lines = [process.stdout.readline() for _ in range(3)]
    finally:
        status, _ = stop(process)
    assert lines[0].startswith("stub server:  http://127.0.0.1:")
    assert lines[1].startswith("admin API:    http://127.0.0.1:")
    assert lines[2].strip().endswith(str(tmp_path / "data"))
    assert status == 0


def test_tls_serves_https_with_printed_certificate(tmp_path):
    process = start_cli("--json", "--tls", "--data", str(tmp_path / "data"))
    try:
        line = json.loads(process.stdout.readline())
        assert line["url"].startswith("https://127.0.0.1:")
        cert_path = Path(line["cert_path"])
        assert cert_path.is_file()
        assert (cert_path.parent / "key.pem").stat().st_mode & 0o077 == 0
        response = requests.get(line["url"] + "/v1/subscription/configuration", verify=str(cert_path))
        assert response.status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(line["url"] + "/v1/subscription/configuration")
    finally:
        status, _ = stop(process)
    assert status == 0


def test_openapi_documents_every_route(tmp_path):
    process = start_cli("--json", "--data", str(tmp_path / "data"))
    try:
        url = json.loads(process.stdout.readline())["url"]
        document = requests.get(url + "/openapi.json").json()
    finally:
        stop(process)
    operations = {(method, path): spec for path, methods in document["paths"].items() for method, spec in methods.items()}
    assert ARCHIVE_ENDPOINTS <= set(operations)
    assert ("get", "/v4/attachments/form/upload") in operations
    assert ("get", "/v1/subscription/configuration") in operations
    assert {("post", "/upload/{bucket}"), ("patch", "/upload/{bucket}/{key}"), ("head", "/upload/{bucket}/{key}")} <= set(operations)
    for key in ARCHIVE_ENDPOINTS:
        description = operations[key]["description"]
        assert "Auth:" in description, key
        assert "Records:" in description, key
        assert "Faults:" in description, key
    zk_parameters = {item["name"] for item in operations[("get", "/v1/archives")]["parameters"]}
    assert {"X-Signal-ZK-Auth", "X-Signal-ZK-Auth-Signature"} <= zk_parameters


def test_unknown_config_setting_is_one_line_error(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"no_such_setting": 1}))
    result = subprocess.run(
        [CLI, "stub-server", "--config", str(config), "--data", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"backup-harness: error: config file {config} has unknown settings: no_such_setting"


def test_busy_port_is_one_line_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [CLI, "stub-server", "--port", str(port), "--data", str(tmp_path / "data")],
            capture_output=True, text=True, timeout=30,
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_host_is_one_line_error(tmp_path):
    result = subprocess.run(
        [CLI, "stub-server", "--host", "0.0.0.0.0", "--data", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("backup-harness: error: invalid --host '0.0.0.0.0'")
    assert len(result.stderr.strip().splitlines()) == 1
