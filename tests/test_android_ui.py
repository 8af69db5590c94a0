"""uiautomator2 against the double's UI server: selectors, typed errors, crash recovery."""

from __future__ import annotations

import pytest
from android_support import PACKAGE, KeyScreenApp, adb_double, device, make_apk, sim  # noqa: F401 (fixtures)

from harness.android.errors import UiElementNotFoundError, UiServerError
from harness.android.packages import AppPackage
from harness.android.redaction import MASK, Redactor
from harness.android.ui import DeviceUi, u2_selector
from harness.errors import InfrastructureError, UsageError


@pytest.fixture
def ui(device, tmp_path):
    AppPackage(device, PACKAGE).install(make_apk(tmp_path, kind="test-key-screen"))
    AppPackage(device, PACKAGE).start()
    KeyScreenApp.shown_text = "ABCD EFGH"
    session = DeviceUi(device, dump_dir=tmp_path / "dumps")
    yield session
    session.close()


def test_reads_text_by_resource_id(ui, sim, adb_double) -> None:
    assert ui.get_text({"resource_id": f"{PACKAGE}:id/recovery_key"}, timeout=1) == "ABCD EFGH"
    assert ui.texts({"class_name": "android.widget.TextView"}) == ["ABCD EFGH"]
    assert ui.exists({"text_contains": "EFGH"})
    assert not ui.exists({"text": "nothing"})
    requests = adb_double.requests_to(sim.serial)
    assert "tcp:9008" in requests
    assert any(request.startswith("shell:CLASSPATH=/data/local/tmp/u2.jar app_process") for request in requests)


def test_missing_element_carries_the_dump(ui) -> None:
    with pytest.raises(UiElementNotFoundError) as caught:
        ui.click({"text": "Back up now"}, timeout=0.3)
    error = caught.value
    assert isinstance(error, InfrastructureError)
    assert "text='Back up now' did not appear" in str(error)
    assert "ABCD EFGH" in error.hierarchy
    assert error.dump_path is not None and error.dump_path.read_text() == error.hierarchy


def test_dump_masks_secrets(ui) -> None:
    ui.redactor = Redactor()
    ui.redactor.add("abcdefgh")
    with pytest.raises(UiElementNotFoundError) as caught:
        ui.require({"text": "Back up now"}, timeout=0.1)
    assert MASK in caught.value.hierarchy
    assert "ABCD EFGH" not in caught.value.hierarchy


def test_crashed_server_between_calls_recovers(ui, sim) -> None:
    ui.get_text({"resource_id": f"{PACKAGE}:id/recovery_key"}, timeout=1)
    assert sim.crash_ui_server()
    assert ui.get_text({"resource_id": f"{PACKAGE}:id/recovery_key"}, timeout=1) == "ABCD EFGH"
    assert sim.ui_servers  # uiautomator2 started a new one


def test_server_dying_mid_call_is_restarted_once(ui, sim) -> None:
    ui.exists({"text": "warm up"})
    sim.faults.ui_crash_on_method = "objInfoOfAllInstances"
    assert ui.texts({"class_name": "android.widget.TextView"}) == ["ABCD EFGH"]
    assert ui.restarts == 1


def test_server_that_keeps_dying_is_an_infrastructure_error(ui, sim, monkeypatch) -> None:
    ui.exists({"text": "warm up"})
    original = sim.faults.take_ui_crash
    monkeypatch.setattr(sim.faults, "take_ui_crash", lambda method: method == "dumpWindowHierarchy" or original(method))
    with pytest.raises(UiServerError, match="failed twice .* also after restarting"):
        ui.dump_hierarchy()


def test_selector_fields_are_checked() -> None:
    assert u2_selector({"resource_id": "a:id/b", "text": "x"}) == {"resourceId": "a:id/b", "text": "x"}
    with pytest.raises(UsageError, match="unknown selector field"):
        u2_selector({"xpath": "//node"})
