"""Faults the simulated device can show, for tests of the harness's infrastructure errors.

Each fault is one of the ways a real device session breaks: the device drops off adb in the
middle of a command, shell commands become slow, the on-device UI server crashes. Faults are
set through :class:`FaultPlan` in process, or by a separate process through the double's
``host:double-fault:`` service (see ``harness.android.double.server``).
"""

from __future__ import annotations

import dataclasses
import re
import threading

FAULT_NAMES = ("offline", "offline-on", "slow-shell", "ui-crash", "ui-crash-on", "clear")


@dataclasses.dataclass
class FaultPlan:
    """Faults armed on one device. One-shot faults disarm themselves when they fire."""

    shell_delay_s: float = 0.0
    shell_delay_pattern: str | None = None
    offline_on_pattern: str | None = None
    offline_duration_s: float = 1.0
    ui_crash_on_method: str | None = None
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def shell_delay(self, command: str) -> float:
        """Return how long a shell command waits before it runs."""
        if self.shell_delay_s <= 0:
            return 0.0
        if self.shell_delay_pattern and not re.search(self.shell_delay_pattern, command):
            return 0.0
        return self.shell_delay_s

    def take_offline_trigger(self, command: str) -> float | None:
        """If ``command`` trips the armed offline fault, disarm it and return its duration."""
        with self._lock:
            if self.offline_on_pattern and re.search(self.offline_on_pattern, command):
                self.offline_on_pattern = None
                return self.offline_duration_s
        return None

    def take_ui_crash(self, method: str) -> bool:
        """If the UI server should crash on this JSON-RPC method, disarm and return True."""
        with self._lock:
            if self.ui_crash_on_method and self.ui_crash_on_method == method:
                self.ui_crash_on_method = None
                return True
        return False

    def clear(self) -> None:
        with self._lock:
            self.shell_delay_s = 0.0
            self.shell_delay_pattern = None
            self.offline_on_pattern = None
            self.ui_crash_on_method = None
