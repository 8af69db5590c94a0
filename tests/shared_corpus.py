"""Where the shared backup corpus is: Signal's test cases and libsignal's encrypted files.

CI lays a copy of `shared/` beside the clone, so `<repository>/../shared` comes first; the
environment variable BACKUP_HARNESS_SHARED overrides it for other layouts.
"""

from __future__ import annotations

import os
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent


def _find_shared() -> Path:
    override = os.environ.get("BACKUP_HARNESS_SHARED")
    if override:
        return Path(override)
    for candidate in (REPOSITORY.parent / "shared", Path("/work/shared")):
        if (candidate / "corpus").is_dir():
            return candidate
    return REPOSITORY.parent / "shared"


SHARED = _find_shared()
CORPUS = SHARED / "corpus"
SIGNAL_TEST_CASES = CORPUS / "signal-message-backup-tests"
LIBSIGNAL_FILES = CORPUS / "libsignal"
