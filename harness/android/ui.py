"""The device UI through uiautomator2, with typed errors and one restart on a crashed server.

uiautomator2 already restarts its on-device server once when a request cannot connect. A
server that dies in the middle of a request surfaces as a dropped HTTP connection instead;
:class:`DeviceUi` treats both the same way: restart the server once, retry the call once,
and raise :class:`UiServerError` if the retry fails too. A selector that matches nothing
within its wait raises :class:`UiElementNotFoundError` carrying the window dump taken at that
moment (secrets masked), because "element not found" is only useful next to what the screen
showed instead.
"""

from __future__ import annotations

import http.client
import logging
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import adbutils
import uiautomator2
from uiautomator2 import exceptions as u2_errors

from harness.android.device import AndroidDevice
from harness.android.errors import UiElementNotFoundError, UiServerError
from harness.android.redaction import Redactor
from harness.errors import UsageError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Profile selector keys (snake_case, as in the YAML) -> uiautomator2 UiSelector fields.
SELECTOR_FIELDS = {
    "text": "text", "text_contains": "textContains", "text_matches": "textMatches",
    "text_starts_with": "textStartsWith", "resource_id": "resourceId",
    "resource_id_matches": "resourceIdMatches", "description": "description",
    "description_contains": "descriptionContains", "description_matches": "descriptionMatches",
    "class_name": "className", "package": "packageName", "instance": "instance",
    "clickable": "clickable", "enabled": "enabled", "checked": "checked",
}
_SERVER_FAILURES = (u2_errors.HTTPError, u2_errors.UiAutomationError, u2_errors.RPCInvalidError,
                    http.client.HTTPException, ConnectionError, adbutils.AdbError)


def u2_selector(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Translate a profile selector into uiautomator2 keyword arguments."""
    unknown = sorted(set(spec) - set(SELECTOR_FIELDS))
    if unknown:
        raise UsageError(f"unknown selector field(s) {', '.join(unknown)}; use {', '.join(SELECTOR_FIELDS)}")
    if not spec:
        raise UsageError("empty selector: name at least one of text, resource_id, description")
    return {SELECTOR_FIELDS[key]: value for key, value in spec.items()}


def describe(spec: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in spec.items())


class DeviceUi:
    """One uiautomator2 session on one device."""

    def __init__(self, device: AndroidDevice, *, redactor: Redactor | None = None,
                 dump_dir: Path | None = None, server_port: int = uiautomator2.core.DEFAULT_SERVER_PORT) -> None:
        self.device = device
        self.redactor = redactor if redactor is not None else Redactor()
        self.dump_dir = dump_dir
        self.server_port = server_port
        self._session: uiautomator2.Device | None = None
        self.restarts = 0

    # Session --------------------------------------------------------------------------------
    @property
    def session(self) -> uiautomator2.Device:
        if self._session is None:
            self._session = self._connect()
        return self._session

    def _connect(self) -> uiautomator2.Device:
        try:
            session = uiautomator2.connect(self.device.adb, port=self.server_port)
        except (u2_errors.BaseException, adbutils.AdbError, OSError) as error:
            raise UiServerError(f"the uiautomator2 server did not start on {self.device.serial}: "
                                f"{_one_line(error)}; check `adb -s {self.device.serial} shell "
                                "ls /data/local/tmp/u2.jar` and free port "
                                f"{self.server_port} on the device") from error
        session.settings["wait_timeout"] = 0  # waits are explicit in this module
        log.info("uiautomator2 server ready on %s", self.device.serial)
        return session

    def restart_server(self) -> None:
        """Stop and start the on-device server (one recovery step)."""
        self.restarts += 1
        log.warning("restarting the uiautomator2 server on %s", self.device.serial)
        try:
            self.session.stop_uiautomator()
            self.session.start_uiautomator()
        except (u2_errors.BaseException, adbutils.AdbError, OSError) as error:
            raise UiServerError(f"restarting the uiautomator2 server on {self.device.serial} failed: "
                                f"{_one_line(error)}") from error

    def close(self) -> None:
        if self._session is not None:
            try:
                self._session.stop_uiautomator(wait=False)
            except (u2_errors.BaseException, adbutils.AdbError, OSError) as error:
                log.info("stopping the uiautomator2 server on %s: %s", self.device.serial, error)
            self._session = None

    def _call(self, what: str, operation: Callable[[uiautomator2.Device], T]) -> T:
        try:
            return operation(self.session)
        except _SERVER_FAILURES as first_error:
            log.warning("%s failed on %s (%s); restarting the ui server once", what, self.device.serial,
                        _one_line(first_error))
        self.restart_server()
        try:
            return operation(self.session)
        except _SERVER_FAILURES as error:
            raise UiServerError(f"{what} failed twice on {self.device.serial}, also after restarting the "
                                f"uiautomator2 server: {_one_line(error)}") from error

    # Queries ----------------------------------------------------------------------------------
    def wait(self, spec: Mapping[str, Any], timeout: float) -> bool:
        """Wait until the selector matches; return whether it did within ``timeout``."""
        selector = u2_selector(spec)
        return bool(self._call(f"waiting for {describe(spec)}",
                               lambda session: session(**selector).wait(timeout=timeout)))

    def wait_gone(self, spec: Mapping[str, Any], timeout: float) -> bool:
        selector = u2_selector(spec)
        return bool(self._call(f"waiting for {describe(spec)} to go",
                               lambda session: session(**selector).wait_gone(timeout=timeout)))

    def exists(self, spec: Mapping[str, Any]) -> bool:
        selector = u2_selector(spec)
        return bool(self._call(f"checking {describe(spec)}", lambda session: session(**selector).exists()))

    def require(self, spec: Mapping[str, Any], timeout: float) -> None:
        """Wait for the selector or raise UiElementNotFoundError with the window dump."""
        if not self.wait(spec, timeout):
            raise self.not_found(spec, timeout)

    def get_text(self, spec: Mapping[str, Any], timeout: float) -> str:
        self.require(spec, timeout)
        selector = u2_selector(spec)
        return str(self._call(f"reading {describe(spec)}", lambda session: session(**selector).get_text()))

    def texts(self, spec: Mapping[str, Any]) -> list[str]:
        """Return the text of every element the selector matches, in screen order."""
        selector = u2_selector(spec)
        infos = self._call(f"reading all {describe(spec)}", lambda session: session(**selector).info_list())
        return [str(info.get("text") or "") for info in infos]

    def dump_hierarchy(self) -> str:
        return str(self._call("dumping the window hierarchy", lambda session: session.dump_hierarchy()))

    # Actions ----------------------------------------------------------------------------------
    def click(self, spec: Mapping[str, Any], timeout: float) -> None:
        self.require(spec, timeout)
        selector = u2_selector(spec)
        self._call(f"clicking {describe(spec)}", lambda session: session(**selector).click(timeout=0))

    def set_text(self, spec: Mapping[str, Any], text: str, timeout: float) -> None:
        """Replace the text of a field (the text itself is never logged: it may be a key)."""
        self.require(spec, timeout)
        selector = u2_selector(spec)
        self._call(f"typing into {describe(spec)}", lambda session: session(**selector).set_text(text))

    def press(self, key: str) -> None:
        self._call(f"pressing {key}", lambda session: session.press(key))

    def swipe(self, direction: str) -> None:
        """Swipe the screen (``up`` scrolls a list towards its end)."""
        self._call(f"swiping {direction}", lambda session: session.swipe_ext(direction))

    # Errors -------------------------------------------------------------------------------------
    def not_found(self, spec: Mapping[str, Any], timeout: float) -> UiElementNotFoundError:
        """Build the error for a missing element, with the (redacted) window dump attached."""
        try:
            hierarchy = self.redactor.redact(self.dump_hierarchy())
        except UiServerError as error:
            hierarchy = f"<!-- window dump unavailable: {error} -->"
        dump_path = None
        if self.dump_dir is not None:
            self.dump_dir.mkdir(parents=True, exist_ok=True)
            name = re.sub(r"[^\w.-]+", "_", describe(spec))[:80] or "element"
            dump_path = self.dump_dir / f"not-found,{name},{int(time.time() * 1000)}.xml"
            dump_path.write_text(hierarchy, encoding="utf-8")
        where = f"; window dump saved to {dump_path}" if dump_path else ""
        return UiElementNotFoundError(
            f"UI element {describe(spec)} did not appear on {self.device.serial} within {timeout:g} s"
            f"{where}; check the app profile's selectors against the dump",
            hierarchy=hierarchy, dump_path=dump_path,
        )


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return (text[:300] + "...") if len(text) > 300 else text or type(error).__name__
