"""Bad input to the reference app and its phone_app adapter gives one clear error, never a
traceback, and leaves nothing half-written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import requests

from harness.errors import DeviceError, ScenarioError
from harness.scenario import load_scenario
from harness.targets.base import Account, ActionRejectedError
from harness.targets.reference import ReferenceTarget
from reference_app_support import HOUR_MS, attachment, message, scenario

ACCOUNT = Account(aci="11111111-1111-1111-1111-111111111111", e164="+15550100000", password="pw")


def run_app(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reference_app", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def phone_app(tmp_path):
    phone_app = ReferenceTarget(tmp_path / "phone")
    phone_app.start()
    yield phone_app
    phone_app.close()


def test_unknown_defect_exits_with_names(tmp_path):
    result = run_app("--data", str(tmp_path / "d"), "--defect", "no-such-bug")
    assert result.returncode == 2
    assert "unknown defect 'no-such-bug'" in result.stderr
    assert "keeps-short-timers" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "d").exists()


def test_unknown_defect_on_target_start(tmp_path):
    phone_app = ReferenceTarget(tmp_path / "phone", defects=["no-such-bug"])
    with pytest.raises(DeviceError, match="no-such-bug"):
        phone_app.start()
    assert not phone_app.running


def test_missing_data_option():
    result = run_app()
    assert result.returncode == 2
    assert "--data DIR is required" in result.stderr


def test_data_path_is_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("not a directory")
    result = run_app("--data", str(path))
    assert result.returncode == 2
    assert "is not a directory" in result.stderr


def test_list_defects_prints_every_name():
    result = run_app("--list-defects")
    names = {line.split()[0] for line in result.stdout.splitlines()}
    assert result.returncode == 0
    assert {"plaintext-upload", "restore-ignores-mac", "account-auth-on-archive-routes"} <= names


def test_request_while_stopped(tmp_path):
    phone_app = ReferenceTarget(tmp_path / "phone")
    with pytest.raises(DeviceError, match="not running; call start"):
        phone_app.backup_status()


def test_request_after_app_died(phone_app):
    os.kill(phone_app._process.pid, signal.SIGKILL)
    phone_app._process.wait()
    with pytest.raises(DeviceError, match="exited with status"):
        phone_app.clock_ms()


def test_stop_and_wipe_are_safe_twice(phone_app):
    phone_app.stop()
    phone_app.stop()
    phone_app.wipe()
    assert not phone_app.data_dir.exists()


def test_malformed_scenario_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nself: {name: Me}\nrecipients: {}\nchats: []\nmessages:\n  - chat: nobody\n    sent: -1d\n    direction: sideways\n")
    with pytest.raises(ScenarioError, match="broken.yaml"):
        load_scenario(path)


def test_malformed_resolved_scenario_rejected(phone_app):
    phone_app.register_account(ACCOUNT)
    now = phone_app.clock_ms()
    good = scenario(now, [message("a", now - HOUR_MS)])
    del good["contacts"][0]["aci"]
    with pytest.raises(ActionRejectedError, match=r"scenario.contacts\[0\]: missing field 'aci'"):
        phone_app.load_scenario(good)


def test_bad_message_batch_leaves_nothing(phone_app):
    phone_app.register_account(ACCOUNT)
    now = phone_app.clock_ms()
    phone_app.load_scenario(scenario(now, [message("a", now - HOUR_MS)]))
    batch = [message("b", now - HOUR_MS + 1), message("c", now, chat="nobody")]
    with pytest.raises(ActionRejectedError, match=r"messages\[1\]: unknown chat 'nobody'"):
        phone_app.add_messages(batch)
    texts = [m.text for m in phone_app.visible_messages()]
    assert texts == ["text of a"]


def test_bad_media_batch_leaves_no_files(phone_app):
    phone_app.register_account(ACCOUNT)
    now = phone_app.clock_ms()
    phone_app.load_scenario(scenario(now, []))
    photo = message("p", now - HOUR_MS, kind="media", attachments=[attachment("p")])
    with pytest.raises(ActionRejectedError, match="unknown chat"):
        phone_app.add_messages([photo, message("q", now, chat="nobody")])
    folder = phone_app.data_dir / "attachments"
    assert not folder.exists() or list(folder.iterdir()) == []
    assert phone_app.visible_messages() == []


def test_bad_thumbnail_flag_in_scenario(phone_app):
    phone_app.register_account(ACCOUNT)
    now = phone_app.clock_ms()
    phone_app.load_scenario(scenario(now, []))
    photo = message("p", now - HOUR_MS, kind="media", attachments=[attachment("p", thumbnail="yes")])
    with pytest.raises(ActionRejectedError, match=r"messages\[0\]\.attachments\[0\]: field 'thumbnail' must be bool"):
        phone_app.add_messages([photo])
    folder = phone_app.data_dir / "attachments"
    assert not folder.exists() or list(folder.iterdir()) == []


def test_bad_thumbnail_flag_on_send_leaves_no_files(phone_app):
    phone_app.register_account(ACCOUNT)
    now = phone_app.clock_ms()
    phone_app.load_scenario(scenario(now, []))
    good = {"file_name": "a.jpg", "content_type": "image/jpeg", "size": 100}
    bad = {"file_name": "b.jpg", "content_type": "image/jpeg", "size": 100, "thumbnail": 1}
    with pytest.raises(ActionRejectedError, match=r"attachments\[1\]\.thumbnail must be true or false") as caught:
        phone_app.send_message("Bob Jones", "photos", attachments=[good, bad])
    folder = phone_app.data_dir / "attachments"
    assert caught.value.status == 400
    assert not folder.exists() or list(folder.iterdir()) == []
    assert phone_app.visible_messages() == []


def test_scenario_before_registration(phone_app):
    now = phone_app.clock_ms()
    with pytest.raises(ActionRejectedError, match="register an account first") as caught:
        phone_app.load_scenario(scenario(now, []))
    assert caught.value.status == 409


@pytest.mark.parametrize(
    "method, path, body, status, fragment",
    [
        ("POST", "/clock", {"epoch_ms": -5}, 400, "must not be negative"),
        ("POST", "/clock", {"epoch_ms": 1, "timezone": "Mars/Olympus"}, 400, "unknown time zone"),
        ("POST", "/clock", {"epoch_ms": "soon"}, 400, "must be int"),
        ("POST", "/clock/advance", {"delta_ms": -1}, 400, "must not be negative"),
        ("POST", "/backups/time", {"hour": 25, "minute": 0}, 400, "not a time of day"),
        ("POST", "/backups/tier", {"tier": "gold"}, 400, "free or paid"),
        ("POST", "/backups/run", {}, 409, "backups are turned off"),
        ("POST", "/restore", {}, 400, "missing field 'recovery_key'"),
        ("POST", "/server", {"url": "http://192.0.2.1:80", "zk_public_params": "AA=="}, 400, "not on loopback"),
        ("POST", "/account", {"aci": "not-a-uuid", "e164": "+1"}, 400, "is not a UUID"),
        ("POST", "/messages/send", {"chat": "Nobody", "text": "x"}, 409, "register an account first"),
        ("GET", "/no/such/route", None, 404, "no control route"),
        ("GET", "/restore", None, 405, "use POST"),
        ("GET", "/log/wait", None, 400, "missing query parameter 'pattern'"),
    ],
)
def test_control_rejects_bad_requests(phone_app, method, path, body, status, fragment):
    with pytest.raises(ActionRejectedError) as caught:
        phone_app.request(method, path, body)
    assert caught.value.status == status
    assert fragment in str(caught.value)


def test_control_rejects_invalid_json(phone_app):
    response = requests.post(f"{phone_app.control_url}/clock", data=b"{not json", timeout=10)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]


def test_control_rejects_non_object_body(phone_app):
    response = requests.post(f"{phone_app.control_url}/clock", data=json.dumps([1, 2]), timeout=10)
    assert response.status_code == 400
    assert "must be a JSON object" in response.json()["error"]["message"]


def test_wait_for_log_times_out(phone_app):
    with pytest.raises(DeviceError, match="no log line matched"):
        phone_app.wait_for_log("this never appears", phone_app.log_position(), 0.5)


def test_wait_for_log_after_stop_reads_file(phone_app):
    position = phone_app.log_position()
    phone_app.set_clock(1_700_000_000_000)
    phone_app.stop()
    line = phone_app.wait_for_log("clock set", position, 1)
    assert "epoch_ms=1700000000000" in line.text
    with pytest.raises(DeviceError, match="not running"):
        phone_app.wait_for_log("never", position, 1)


def test_message_to_unknown_chat(phone_app):
    phone_app.register_account(ACCOUNT)
    with pytest.raises(ActionRejectedError, match="no chat titled 'Nobody'") as caught:
        phone_app.send_message("Nobody", "hi")
    assert caught.value.status == 404


def test_corrupt_settings_file_reported(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    (data / "settings.json").write_text("{broken")
    result = run_app("--data", str(data))
    assert result.returncode == 2
    assert "cannot open the app data" in result.stderr
    assert "Traceback" not in result.stderr


def test_keystore_without_device_key_reported(tmp_path):
    app = ReferenceTarget(tmp_path / "phone")
    app.start()
    app.register_account(ACCOUNT)
    app.enable_backups("free")
    app.stop()
    app.device_file.unlink()
    with pytest.raises(DeviceError, match="keystore key; wipe the app data"):
        app.start()
