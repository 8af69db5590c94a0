"""The device suite's shared fixtures; the harness plugin provides stub, target and the rest.

Run it with ``backup-harness run`` (which starts the stub and writes the report) or directly:
``pytest device_tests`` (the plugin then starts a stub for the session).
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # The corpus round trip runs only when a corpus folder is given.
    if collection_path.name == "test_corpus.py" and not config.getoption("corpus"):
        return True
    return None


@pytest.fixture(scope="session")
def policy(harness_settings) -> str:
    """The exclusion boundary policy the suite checks (``--policy``)."""
    return harness_settings.policy


@pytest.fixture(scope="session")
def scenario_override(harness_settings) -> Path | None:
    """The ``--scenario`` file, which replaces the general-purpose scenario of the suite."""
    return harness_settings.scenario
