"""One worker thread that runs the app's jobs (backup, refresh, restore) one at a time.

Android's job manager runs at most one backup job at a time and never a backup during a
restore; a single serial worker gives the same guarantee.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

log = logging.getLogger(__name__)


class JobRunner:
    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, Callable[[], Any], Future] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="app-jobs", daemon=True)
        self._pending: dict[str, Future] = {}
        self._lock = threading.Lock()
        self.current: str | None = None
        self._thread.start()

    def submit(self, name: str, work: Callable[[], Any], *, coalesce: bool = False) -> Future:
        """Queue ``work``; with ``coalesce``, a job of the same name already queued is reused
        (at most one queued instance, as Android's backup job is configured)."""
        with self._lock:
            if coalesce and name in self._pending and not self._pending[name].done():
                return self._pending[name]
            future: Future = Future()
            self._pending[name] = future
            self._queue.put((name, work, future))
            return future

    def busy(self) -> bool:
        return self.current is not None or not self._queue.empty()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            name, work, future = entry
            if not future.set_running_or_notify_cancel():
                continue
            self.current = name
            try:
                future.set_result(work())
            except BaseException as error:  # noqa: BLE001 - handed to the waiting caller
                log.exception("job %s failed with an unexpected error", name)
                future.set_exception(error)
            finally:
                self.current = None
