"""Per-test artifact folders: recorded traffic, archive summaries, app log excerpts, diffs.

Files are written as the test goes, so a test that fails halfway still leaves what it had.
Every write replaces the registered secrets (``register_secret``: recovery keys the suite
created) in all their encoded forms, so a leak that a test catches does not leak again
through the report.
"""

from __future__ import annotations

import json
import logging
import mimetypes
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REDACTED = b"[redacted secret]"
# Encoded forms of every registered secret, longest first so that no form is cut in half.
_SECRET_FORMS: list[bytes] = []


def register_secret(value: str | bytes) -> None:
    """Redact ``value`` (in every encoding ``harness.canaries.encodings`` lists) from artifacts."""
    from harness.canaries import encodings

    forms = set(_SECRET_FORMS)
    forms.update(form for form in encodings(value).values() if form)
    _SECRET_FORMS[:] = sorted(forms, key=len, reverse=True)


def redact(data: bytes) -> bytes:
    for form in _SECRET_FORMS:
        data = data.replace(form, REDACTED)
    return data


class ArtifactFolder:
    """One test's artifact folder; it is created on the first write."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def file(self, name: str) -> Path:
        """Return the path for an artifact file, creating the folder."""
        if "/" in name or name.startswith("."):
            raise ValueError(f"artifact name {name!r} must be a plain file name")
        self.path.mkdir(parents=True, exist_ok=True)
        return self.path / name

    def save_text(self, name: str, text: str) -> Path:
        return self.save_bytes(name, text.encode("utf-8"))

    def save_json(self, name: str, data: Any) -> Path:
        return self.save_text(name, json.dumps(data, indent=2, default=str) + "\n")

    def save_bytes(self, name: str, data: bytes) -> Path:
        path = self.file(name)
        path.write_bytes(redact(data))
        return path

    def files(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        return sorted(path for path in self.path.iterdir() if path.is_file())

    def attach_to_allure(self) -> None:
        """Attach every file of the folder to the current allure test result."""
        import allure

        for path in self.files():
            mime = mimetypes.guess_type(path.name)[0] or "text/plain"
            extension = path.suffix.lstrip(".") or "txt"
            allure.attach.file(str(path), name=path.name, attachment_type=mime, extension=extension)
