"""Failure artifacts of a test: screenshot, window hierarchy, logcat excerpt, bug report.

Each artifact is captured on its own. One that fails (the device dropped off, the UI server
is down) is noted in ``artifacts-errors.txt`` and the others are still written, because the
capture must never hide the failure being reported. Secrets are masked in every text file.
The screenshot is skipped when the screen shows a registered secret (the recovery key
screen), and replaced by the hierarchy dump when the window is secure (FLAG_SECURE), where
``screencap`` only returns black pixels.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from pathlib import Path
from typing import Any

import adbutils
from PIL import Image, UnidentifiedImageError
from uiautomator2.exceptions import BaseException as UiAutomatorError

from harness.android.device import AndroidDevice
from harness.android.logcat import LogcatService
from harness.android.redaction import Redactor
from harness.errors import InfrastructureError
from harness.targets.base import LogPosition

log = logging.getLogger(__name__)

DUMP_PATH = "/data/local/tmp/harness-window.xml"


def is_blank_png(data: bytes) -> bool:
    """Whether a PNG is entirely black (what screencap returns for a secure window)."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError):
        return True
    return image.convert("L").getextrema() == (0, 0)


def dump_hierarchy(device: AndroidDevice, ui: Any | None = None) -> str:
    """Return the window hierarchy XML, from uiautomator2 when connected, else ``uiautomator dump``."""
    if ui is not None:
        try:
            return str(ui.dump_hierarchy())
        except (UiAutomatorError, adbutils.AdbError, OSError) as error:
            log.warning("uiautomator2 dump failed on %s (%s); trying `uiautomator dump`", device.serial, error)
    result = device.shell(f"rm -f {DUMP_PATH}; uiautomator dump {DUMP_PATH}", check=False)
    if result.exit_code != 0 or "dumped to" not in result.output:
        raise InfrastructureError(f"`uiautomator dump` failed on {device.serial}: {result.output.strip()}")
    return device.read_file(DUMP_PATH).decode("utf-8", errors="replace")


def capture_failure_artifacts(
    device: AndroidDevice,
    destination: Path,
    *,
    ui: Any | None = None,
    logcat: LogcatService | None = None,
    since: LogPosition | None = None,
    redactor: Redactor | None = None,
    bugreport: bool = False,
) -> list[Path]:
    """Write every artifact that can be captured into ``destination``; return the files."""
    if redactor is None:
        redactor = logcat.redactor if logcat is not None else Redactor()
    destination.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    errors: list[str] = []
    hierarchy: str | None = None

    try:
        hierarchy = dump_hierarchy(device, ui)
        path = destination / "window.xml"
        path.write_text(redactor.redact(hierarchy), encoding="utf-8")
        written.append(path)
    except InfrastructureError as error:
        errors.append(f"window hierarchy: {error}")

    written += _screenshot(device, destination, hierarchy, redactor, errors)

    if logcat is not None:
        written.append(logcat.excerpt(destination / "logcat.txt", since))

    if bugreport:
        try:
            written.append(capture_bugreport(device, destination / "bugreport.zip", redactor))
        except InfrastructureError as error:
            errors.append(f"bug report: {error}")

    if errors:
        path = destination / "artifacts-errors.txt"
        path.write_text("".join(redactor.redact(line) + "\n" for line in errors), encoding="utf-8")
        written.append(path)
        log.warning("some failure artifacts of %s could not be captured: %s", device.serial, "; ".join(errors))
    return written


def _screenshot(device: AndroidDevice, destination: Path, hierarchy: str | None, redactor: Redactor,
                errors: list[str]) -> list[Path]:
    note = destination / "screenshot.txt"
    if hierarchy is not None and redactor.contains_secret(hierarchy):
        note.write_text("screenshot skipped: the screen shows a secret (recovery key); see window.xml\n",
                        encoding="utf-8")
        return [note]
    try:
        png = device.read_output(["screencap", "-p"])
    except InfrastructureError as error:
        errors.append(f"screenshot: {error}")
        return []
    if is_blank_png(png):
        note.write_text("screenshot unavailable: the window is secure (FLAG_SECURE), screencap returned "
                        "black pixels; window.xml holds the screen's content\n", encoding="utf-8")
        return [note]
    path = destination / "screenshot.png"
    path.write_bytes(png)
    return [path]


def capture_bugreport(device: AndroidDevice, path: Path, redactor: Redactor | None = None) -> Path:
    """Run ``bugreportz``, pull the zip, and mask secrets in its text entries."""
    result = device.shell(["bugreportz"], timeout=600, check=False)
    match = re.search(r"^OK:(\S+)", result.stdout, re.MULTILINE)
    if match is None:
        raise InfrastructureError(f"`bugreportz` failed on {device.serial}: {result.output.strip() or 'no output'}")
    raw = device.read_file(match.group(1))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_redact_zip(raw, redactor) if redactor else raw)
    log.info("bug report of %s saved to %s", device.serial, path)
    return path


def _redact_zip(raw: bytes, redactor: Redactor) -> bytes:
    output = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as source, zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith(".txt"):
                data = redactor.redact(data.decode("utf-8", errors="replace")).encode("utf-8")
            target.writestr(info, data)
    return output.getvalue()
