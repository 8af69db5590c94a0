"""Run a profile's steps: taps and waits, logcat waits, debug broadcasts, pushed files.

Steps read and write *variables*. A string in a step may name variables as ``{name}``. A
string that is exactly one placeholder keeps the variable's type (an int extra stays an
``--ei``), and an extra whose value is None is left out. Capture steps (``read_fields``,
``wait_log``, ``broadcast``) set variables through value specs (``type``, ``map``, ``none``,
``required``, ``secret``). Secret values are added to the redactor and never logged.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from harness.android import hierarchy
from harness.android.device import AndroidDevice
from harness.android.errors import ProfileMismatchError, UiElementNotFoundError
from harness.android.files import AppFiles
from harness.android.logcat import LogcatService
from harness.android.packages import AppPackage
from harness.android.profile import Profile
from harness.android.redaction import Redactor
from harness.android.ui import DeviceUi
from harness.errors import UsageError
from harness.targets.base import ActionRejectedError, LogPosition

log = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")
_ONLY_PLACEHOLDER = re.compile(r"^\{([A-Za-z_]\w*)\}$")
_MISSING = object()


@dataclasses.dataclass
class StepContext:
    """The state one action run carries from step to step."""

    action: str
    variables: dict[str, Any]
    log_mark: LogPosition | None = None


class ActionRunner:
    """Executes profile steps on one device for one app."""

    def __init__(self, profile: Profile, device: AndroidDevice, app: AppPackage, ui: DeviceUi,
                 logcat: LogcatService, files: AppFiles, redactor: Redactor,
                 launch_extras: Callable[[], dict[str, Any]]) -> None:
        self.profile = profile
        self.device = device
        self.app = app
        self.ui = ui
        self.logcat = logcat
        self.files = files
        self.redactor = redactor
        self.launch_extras = launch_extras
        self._handlers: dict[str, Callable[[dict[str, Any], StepContext, float], None]] = {
            "launch": self._launch, "click": self._click, "click_if_present": self._click_if_present,
            "set_text": self._set_text, "wait": self._wait, "wait_gone": self._wait_gone, "press": self._press,
            "read_fields": self._read_fields, "mark_log": self._mark_log, "wait_log": self._wait_log,
            "broadcast": self._broadcast, "start": self._start, "push_json": self._push_json,
            "push_file": self._push_file, "shell": self._shell,
        }

    def base_variables(self) -> dict[str, Any]:
        return {"package": self.profile.package, "activity": self.profile.activity or "",
                "serial": self.device.serial}

    def run_action(self, name: str, **variables: Any) -> dict[str, Any]:
        """Run a named action of the profile; return the variables it ends with."""
        return self.run_steps(name, self.profile.action(name), variables)

    def run_steps(self, name: str, steps: list[dict[str, Any]], variables: Mapping[str, Any]) -> dict[str, Any]:
        context = StepContext(name, {**self.base_variables(), **variables}, self.logcat.position())
        for index, step in enumerate(steps):
            kind = next(key for key in step if key != "timeout")
            timeout = self._timeout(step.get("timeout"), context)
            log.info("%s step %d: %s", name, index + 1, kind)
            self._handlers[kind](step[kind], context, timeout)
        return context.variables

    # Templates ------------------------------------------------------------------------------------
    def fill(self, value: Any, context: StepContext) -> Any:
        """Replace ``{name}`` placeholders in strings, lists and mappings."""
        if isinstance(value, str):
            only = _ONLY_PLACEHOLDER.match(value)
            if only:
                return self._variable(only.group(1), context)
            return _PLACEHOLDER.sub(lambda match: str(self._variable(match.group(1), context)), value)
        if isinstance(value, list):
            return [self.fill(item, context) for item in value]
        if isinstance(value, dict):
            return {key: self.fill(item, context) for key, item in value.items()}
        return value

    def _variable(self, name: str, context: StepContext) -> Any:
        value = context.variables.get(name, _MISSING)
        if value is _MISSING:
            raise UsageError(f"app profile {self.profile.path.name}: action {context.action} uses "
                             f"{{{name}}}, which is not set here (set: {', '.join(sorted(context.variables))})")
        return value

    def _timeout(self, raw: Any, context: StepContext) -> float:
        if raw is None:
            return self.profile.element_timeout
        value = self.fill(raw, context)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise UsageError(f"app profile {self.profile.path.name}: action {context.action}: timeout "
                             f"{raw!r} is not a number of seconds") from None

    # UI steps ---------------------------------------------------------------------------------------
    def _launch(self, spec: dict[str, Any], context: StepContext, timeout: float) -> None:
        extras = {**self.launch_extras(), **self.fill(spec.get("extras") or {}, context)}
        activity = self.fill(spec.get("activity"), context) or self.profile.activity
        self.app.start(activity, _present(extras), stop_first=bool(spec.get("stop_first")))

    def _click(self, spec: dict[str, Any], context: StepContext, timeout: float) -> None:
        self.ui.click(self.fill(spec, context), timeout)

    def _click_if_present(self, spec: dict[str, Any], context: StepContext, timeout: float) -> None:
        selector = self.fill(spec, context)
        if self.ui.exists(selector):
            self.ui.click(selector, timeout)

    def _set_text(self, spec: dict[str, Any], context: StepContext, timeout: float) -> None:
        self.ui.set_text(self.fill(spec["selector"], context), str(self.fill(spec["text"], context)), timeout)

    def _wait(self, spec: dict[str, Any], context: StepContext, timeout: float) -> None:
        self.ui.require(self.fill(spec, context), timeout)

    def _wait_gone(self, spec: dict[str, Any], context: StepContext, timeout: float) -> None:
        selector = self.fill(spec, context)
        if not self.ui.wait_gone(selector, timeout):
            raise UiElementNotFoundError(f"UI element {selector} was still on screen after {timeout:g} s "
                                         f"on {self.device.serial}", hierarchy=None)

    def _press(self, key: str, context: StepContext, timeout: float) -> None:
        self.ui.press(key)

    def _read_fields(self, spec: dict[str, Any], context: StepContext, timeout: float) -> None:
        fields = spec["fields"]
        wait_s = self._timeout(spec.get("timeout"), context) if spec.get("timeout") is not None else timeout
        for field in fields.values():
            if field.get("required") and "selector" in field:
                self.ui.require(self.fill(field["selector"], context), wait_s)
        root = hierarchy.parse_dump(self.ui.dump_hierarchy())
        for name, field in fields.items():
            raw = hierarchy.first_text(root, self.fill(field["selector"], context))
            self._store(name, field, raw, context)

    # Log, broadcasts, files ------------------------------------------------------------------------
    def _mark_log(self, spec: dict[str, Any], context: StepContext, timeout: float) -> None:
        context.log_mark = self.logcat.position()

    def _wait_log(self, spec: dict[str, Any], context: StepContext, timeout: float) -> None:
        pattern = str(self.fill(spec["pattern"], context))
        wait_s = self._timeout(spec.get("timeout"), context) if spec.get("timeout") is not None else timeout
        line = self.logcat.wait_for(pattern, context.log_mark, wait_s)
        match = re.search(pattern, line.text)
        context.log_mark = LogPosition(line.position.offset + 1)
        for name, field in (spec.get("fields") or {}).items():
            raw = match.group(field["group"]) if match and field["group"] in match.re.groupindex else None
            self._store(name, field, raw, context)

    def _broadcast(self, spec: dict[str, Any], context: StepContext, timeout: float) -> None:
        action = str(self.fill(spec["action"], context))
        extras = _present(self.fill(spec.get("extras") or {}, context))
        result = self.app.broadcast(action, extras, receiver=spec.get("receiver"))
        expected = spec.get("expect_result")
        if expected is not None and result.code != expected:
            raise ActionRejectedError(f"the app rejected {action.rsplit('.', 1)[-1]} on {self.device.serial}: "
                                      f"{result.data or f'result code {result.code}'}", code=str(result.code))
        fields = spec.get("fields") or {}
        if not fields:
            return
        try:
            document = json.loads(result.data or "null")
        except ValueError:
            raise ActionRejectedError(f"the app's reply to {action} is not JSON: {result.data!r}") from None
        for name, field in fields.items():
            self._store(name, field, _json_path(document, field["json"]), context)

    def _start(self, spec: dict[str, Any], context: StepContext, timeout: float) -> None:
        extras = _present(self.fill(spec.get("extras") or {}, context))
        self.app.start(self.fill(spec.get("activity"), context) or self.profile.activity, extras,
                       action=self.fill(spec.get("action"), context))

    def _push_json(self, spec: dict[str, Any], context: StepContext, timeout: float) -> None:
        data = json.dumps(self.fill(spec["value"], context), separators=(",", ":")).encode("utf-8")
        self.device.push(data, str(self.fill(spec["path"], context)))

    def _push_file(self, spec: dict[str, Any], context: StepContext, timeout: float) -> None:
        content = str(self.fill(spec["content"], context)).encode("utf-8")
        path = str(self.fill(spec["path"], context))
        if not spec.get("app_private"):
            self.device.push(content, path)
            return
        staged = f"/data/local/tmp/harness-{self.profile.package}-push"
        self.device.push(content, staged)
        target = f"{self.files.data_dir}/{path.lstrip('/')}"
        self.device.shell(self.files.command("cp", staged, target))
        self.device.shell(["rm", "-f", staged], check=False)

    def _shell(self, argv: list[str], context: StepContext, timeout: float) -> None:
        self.device.shell([str(item) for item in self.fill(argv, context)], timeout=max(timeout, 30))

    # Values -------------------------------------------------------------------------------------------
    def _store(self, name: str, field: dict[str, Any], raw: Any, context: StepContext) -> None:
        value = convert(raw, field)
        if value is None and field.get("required"):
            raise ProfileMismatchError(f"action {context.action} on {self.device.serial}: required value {name!r} "
                                       "is missing; check the profile's selectors or log pattern")
        if field.get("secret") and isinstance(value, str):
            self.redactor.add(value)
        context.variables[name] = value


def convert(raw: Any, field: Mapping[str, Any]) -> Any:
    """Apply a value spec (``none``, ``map``, ``type``) to a captured raw value."""
    kind = field.get("type", "str")
    if kind == "present":
        return raw is not None
    if raw is None:
        return None
    if isinstance(raw, str) and raw in (field.get("none") or []):
        return None
    mapping = field.get("map")
    if mapping is not None:
        if raw not in mapping:
            raise ProfileMismatchError(f"unexpected value {raw!r}: the profile maps only "
                                       f"{', '.join(map(str, mapping))}")
        raw = mapping[raw]
    if kind in ("str", "json"):
        return raw
    if kind == "words":
        return tuple(str(raw).split())
    if kind in ("hour", "minute"):
        hour, _, minute = str(raw).partition(":")
        raw = hour if kind == "hour" else minute
    if kind in ("int", "hour", "minute"):
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ProfileMismatchError(f"expected a whole number, got {raw!r}") from None
    if kind == "bool":
        return raw if isinstance(raw, bool) else str(raw).lower() in ("true", "1", "yes", "on")
    return raw


def _present(extras: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in extras.items() if value is not None}


def _json_path(document: Any, path: str) -> Any:
    value = document
    for part in [part for part in path.split(".") if part]:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value
