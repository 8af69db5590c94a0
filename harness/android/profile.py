"""App profiles: how the Android target drives one app build (``fixtures/profiles/*.yaml``).

A profile maps each target action to steps (taps and waits by selector, logcat waits, debug
broadcasts). It also defines how to point the app at the stub, how to load a scenario, and
how to read the message list off the screen. ``harness/schemas/profile.schema.json`` is the schema;
``docs/android.md`` explains each part. Loading validates the file against the schema and
compiles every regular expression, so a broken profile fails before any device is touched,
with the file and the path of the bad value in the message.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema.exceptions import best_match

from harness.errors import UsageError

REPOSITORY = Path(__file__).resolve().parents[2]
PROFILE_DIR = REPOSITORY / "fixtures" / "profiles"
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "profile.schema.json"
DEFAULT_PROFILE = "reference-double"
DEFAULT_ELEMENT_TIMEOUT_S = 15.0
DEFAULT_LAUNCH_TIMEOUT_S = 30.0

# Actions every profile maps (the Target interface needs them) and the optional ones.
REQUIRED_ACTIONS = ("register_account", "enable_backups", "back_up_now", "read_backup_status", "restore",
                    "regenerate_key", "disable_backups")
OPTIONAL_ACTIONS = ("choose_tier", "set_backup_time", "refresh_now", "add_messages", "delete_message",
                    "send_message", "receive_message", "mark_read")


@functools.cache
def profile_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@dataclasses.dataclass(frozen=True)
class Profile:
    """A validated app profile; ``data`` is the parsed YAML."""

    path: Path
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def package(self) -> str:
        return str(self.data["package"])

    @property
    def activity(self) -> str | None:
        return self.data.get("activity")

    @property
    def verified_on(self) -> list[str]:
        return list(self.data.get("verified_on") or [])

    @property
    def element_timeout(self) -> float:
        return float((self.data.get("timeouts") or {}).get("element", DEFAULT_ELEMENT_TIMEOUT_S))

    @property
    def launch_timeout(self) -> float:
        return float((self.data.get("timeouts") or {}).get("launch", DEFAULT_LAUNCH_TIMEOUT_S))

    @property
    def grants(self) -> list[str]:
        return list((self.data.get("permissions") or {}).get("grant") or [])

    @property
    def revokes(self) -> list[str]:
        return list((self.data.get("permissions") or {}).get("revoke") or [])

    @property
    def message_store(self) -> list[str]:
        return list(self.data.get("message_store") or [])

    @property
    def forward_secrecy_token(self) -> str:
        return str(self.data.get("forward_secrecy_token", "none"))

    @property
    def point_at(self) -> dict[str, Any]:
        return dict(self.data.get("point_at") or {})

    @property
    def message_list(self) -> dict[str, Any]:
        return dict(self.data["read_message_list"])

    @property
    def log_patterns(self) -> dict[str, str]:
        return dict(self.data.get("log_patterns") or {})

    def steps(self, section: str) -> list[dict[str, Any]]:
        """Return the steps of a top-level section (``ready``, ``after_clock_change``)."""
        value = self.data.get(section) or []
        return list(value.get("steps", []) if isinstance(value, dict) else value)

    def has_action(self, name: str) -> bool:
        return name in self.data["actions"]

    def action(self, name: str) -> list[dict[str, Any]]:
        try:
            return list(self.data["actions"][name])
        except KeyError:
            raise UsageError(f"profile {self.path.name} has no {name!r} action; add it under 'actions'") from None


def available_profiles() -> list[str]:
    return sorted(path.stem for path in PROFILE_DIR.glob("*.yaml"))


def resolve_profile(name_or_path: str | Path | None) -> Path:
    """Return the profile file: a path to a YAML file, or a name under fixtures/profiles."""
    if name_or_path is None:
        name_or_path = DEFAULT_PROFILE
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    named = PROFILE_DIR / f"{name_or_path}.yaml"
    if named.is_file():
        return named
    raise UsageError(f"app profile {str(name_or_path)!r} not found: pass a YAML file or one of "
                     f"{', '.join(available_profiles()) or '(none)'}")


def load_profile(name_or_path: str | Path | None = None) -> Profile:
    """Load and validate a profile; raise UsageError naming the file and the bad value."""
    path = resolve_profile(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"app profile {path}:{where} is not valid YAML ({getattr(error, 'problem', error)})") from None
    except OSError as error:
        raise UsageError(f"app profile {path} cannot be read: {error.strerror}") from None
    if not isinstance(data, dict):
        raise UsageError(f"app profile {path} must be a YAML mapping, not {type(data).__name__}")
    validator = jsonschema.Draft202012Validator(profile_schema())
    error = best_match(validator.iter_errors(data))
    if error is not None:
        location = _location(error.absolute_path)
        raise UsageError(f"app profile {path}: {location}: {_short(error.message)}")
    _check_patterns(path, data)
    return Profile(path, data)


def _check_patterns(path: Path, data: dict[str, Any]) -> None:
    """Compile every wait_log pattern and log_patterns value, so a typo fails at load time."""
    def visit(value: Any, where: list[str | int]) -> None:
        if isinstance(value, dict):
            if "wait_log" in value and isinstance(value["wait_log"], dict):
                _compile(path, value["wait_log"].get("pattern", ""), where + ["wait_log", "pattern"])
            for key, item in value.items():
                visit(item, where + [key])
        elif isinstance(value, list):
            for index, item in enumerate(value):
                visit(item, where + [index])

    visit(data, [])
    for suite_pattern, app_pattern in (data.get("log_patterns") or {}).items():
        _compile(path, app_pattern, ["log_patterns", suite_pattern])


def _compile(path: Path, pattern: str, where: list[str | int]) -> None:
    try:
        re.compile(pattern)
    except re.error as error:
        raise UsageError(f"app profile {path}: {_location(where)}: invalid regular expression ({error})") from None


def _location(parts: Any) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif text:
            text += f".{part}"
        else:
            text = str(part)
    return text or "(top level)"


def _short(message: str, limit: int = 240) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."
