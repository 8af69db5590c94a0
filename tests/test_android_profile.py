"""App profiles: the shipped ones validate, broken ones fail with the file and the bad path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.android.actions import convert
from harness.android.errors import ProfileMismatchError
from harness.android.profile import DEFAULT_PROFILE, REQUIRED_ACTIONS, available_profiles, load_profile
from harness.errors import UsageError

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "profiles" / "reference-double.yaml"


def write_variant(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(REFERENCE.read_text())
    change(data)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("name", ["reference-double", "signal-example"])
def test_shipped_profiles_load(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    for action in REQUIRED_ACTIONS:
        assert profile.has_action(action)


def test_default_profile_is_the_double() -> None:
    profile = load_profile(None)
    assert profile.name == DEFAULT_PROFILE
    assert profile.verified_on == ["adb-double"]
    assert profile.package == "org.backupharness.reference"


def test_example_profile_is_marked_unverified() -> None:
    assert load_profile("signal-example").verified_on == []


def test_unknown_profile_lists_available() -> None:
    with pytest.raises(UsageError, match="app profile 'nope' not found: pass a YAML file or one of") as caught:
        load_profile("nope")
    for name in available_profiles():
        assert name in str(caught.value)


def test_missing_action_names_the_path(tmp_path: Path) -> None:
    path = write_variant(tmp_path, lambda data: data["actions"].pop("restore"))
    with pytest.raises(UsageError, match=r"variant.yaml: actions: 'restore' is a required property"):
        load_profile(path)


def test_unknown_selector_field_is_rejected(tmp_path: Path) -> None:
    def change(data):
        data["actions"]["enable_backups"][1] = {"click": {"xpath": "//node"}}

    with pytest.raises(UsageError, match=r"variant.yaml: actions.enable_backups\[1\]"):
        load_profile(write_variant(tmp_path, change))


def test_invalid_log_pattern_is_rejected(tmp_path: Path) -> None:
    def change(data):
        data["actions"]["back_up_now"][4]["wait_log"]["pattern"] = "backup (uploaded"

    with pytest.raises(UsageError, match=r"actions.back_up_now\[4\].wait_log.pattern: invalid regular expression"):
        load_profile(write_variant(tmp_path, change))


def test_yaml_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\npackage: [unclosed\n")
    with pytest.raises(UsageError, match=r"broken.yaml: line \d+ is not valid YAML"):
        load_profile(path)


def test_unknown_action_name_is_rejected(tmp_path: Path) -> None:
    path = write_variant(tmp_path, lambda data: data["actions"].update({"teleport": [{"press": "back"}]}))
    with pytest.raises(UsageError, match="variant.yaml: actions: 'teleport' is not one of"):
        load_profile(path)


@pytest.mark.parametrize(("raw", "spec", "expected"), [
    ("123", {"type": "int"}, 123),
    ("Never", {"type": "int", "none": ["Never"]}, None),
    ("On", {"map": {"On": True, "Off": False}}, True),
    ("02:30", {"type": "hour"}, 2),
    ("02:30", {"type": "minute"}, 30),
    ("👍 ❤️", {"type": "words"}, ("👍", "❤️")),
    (None, {"type": "present"}, False),
    ("", {"type": "present"}, True),
    (None, {"type": "int"}, None),
])
def test_value_conversion(raw, spec, expected) -> None:
    assert convert(raw, spec) == expected


def test_value_conversion_rejects_surprises() -> None:
    with pytest.raises(ProfileMismatchError, match="expected a whole number, got 'soon'"):
        convert("soon", {"type": "int"})
    with pytest.raises(ProfileMismatchError, match="the profile maps only On, Off"):
        convert("Maybe", {"map": {"On": True, "Off": False}})
