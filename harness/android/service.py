"""The lifecycle contract of long-running device helpers (logcat capture, packet capture).

A service is bound to one device for a whole session. Its guarantees:

* ``start()`` begins collecting. Calling it on a running service raises ``RuntimeError``.
* ``stop()`` ends collection and releases every device and host resource (streams, threads,
  files). It is safe to call at any time, also twice, and what was collected stays readable.
* ``pause()`` releases the device-side resources before an expected interruption (a reboot,
  ``adb root``, a planned cable pull) and keeps all state. ``resume()`` continues from where
  the service stopped reading: data the device still holds is neither lost nor repeated.
* An unexpected disconnect is handled inside the service by one reconnect attempt per
  disconnect. If that attempt fails, the service records the error, stops collecting, and
  raises it from the next call that needs fresh data, so a caller never waits on a dead device.
* ``create_output_excerpts(test_name, destination)`` writes what was collected since the
  previous excerpt into ``destination`` and returns the files; the next excerpt starts where
  this one ended.
"""

from __future__ import annotations

import abc
from pathlib import Path


class DeviceService(abc.ABC):
    """A helper that runs beside a device session (see the module docstring for the contract)."""

    @property
    @abc.abstractmethod
    def is_alive(self) -> bool:
        """Whether the service is collecting right now (started, not paused, not failed)."""

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    @abc.abstractmethod
    def pause(self) -> None: ...

    @abc.abstractmethod
    def resume(self) -> None: ...

    @abc.abstractmethod
    def create_output_excerpts(self, test_name: str, destination: Path) -> list[Path]: ...
