"""Injected faults: a registry the admin API fills and a middleware that applies them.

A fault matches requests by method and a shell-style path pattern (``fnmatch``: ``*`` also
matches ``/``). It fires on matching requests after ``skip`` of them have passed, at most
``count`` times (None: without limit), each time with ``probability`` drawn from its own
``random.Random(seed)``, so a run with the same requests fires the same way.

Actions:
  status          respond with ``status`` and an upstream-style JSON error instead of the route
  rate_limit      respond with 429 and ``Retry-After: retry_after``
  delay           wait ``delay_ms`` and then go on (combines with one other action)
  drop            reset the connection before any response
  truncate        send the response head and ``after_bytes`` of the body (default: half),
                  then reset the connection
  cut_upload      let ``after_bytes`` of the request body through, then reset the connection
  corrupt_object  flip bit ``bit`` at ``offset`` (default: middle byte) of the object the request
                  addresses (a TUS create addresses its Upload-Metadata filename); before the
                  route for GET/HEAD, after it for uploads
  delete_object   delete that object, with the same timing
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import fnmatch
import itertools
import logging
import random
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server_stub.errors import error_response
from server_stub.objects import InvalidObjectPath, ObjectStore
from server_stub.transport import abort_connection

log = logging.getLogger(__name__)

ACTIONS = (
    "status",
    "rate_limit",
    "delay",
    "drop",
    "truncate",
    "cut_upload",
    "corrupt_object",
    "delete_object",
)


@dataclass
class Fault:
    id: str
    path: str
    action: str
    method: str = "*"
    status: int = 503
    retry_after: int = 60
    delay_ms: int = 0
    after_bytes: int | None = None
    offset: int | None = None
    bit: int = 0
    count: int | None = None
    skip: int = 0
    probability: float = 1.0
    seed: int = 0
    matched: int = 0
    fired: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self.method = self.method.upper()

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and fnmatch.fnmatchcase(path, self.path)

    def try_fire(self) -> bool:
        self.matched += 1
        if self.matched <= self.skip:
            return False
        if self.count is not None and self.fired >= self.count:
            return False
        if self.probability < 1.0 and self._rng.random() >= self.probability:
            return False
        self.fired += 1
        return True

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if not key.startswith("_")}


class FaultRegistry:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, **spec: Any) -> Fault:
        if spec.get("action") not in ACTIONS:
            raise ValueError(f"unknown fault action {spec.get('action')!r}; use one of {', '.join(ACTIONS)}")
        with self._lock:
            fault = Fault(id=f"fault-{next(self._ids)}", **spec)
            self._faults.append(fault)
        log.info("fault %s installed: %s %s %s", fault.id, fault.method, fault.path, fault.action)
        return fault

    def list(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [fault for fault in self._faults if fault.id != fault_id]
            return len(self._faults) < before

    def clear(self) -> None:
        with self._lock:
            self._faults = []

    def fire(self, method: str, path: str) -> list[Fault]:
        with self._lock:
            return [fault for fault in self._faults if fault.matches(method, path) and fault.try_fire()]


def object_for_request(scope: Scope) -> str | None:
    """Map a CDN request to the logical object it reads or writes (for a TUS create, the
    Upload-Metadata filename names it)."""
    path = scope["path"]
    for prefix, bucket in (("/backups/", "backups"), ("/attachments/", "attachments")):
        if path.startswith(prefix):
            return f"{bucket}/{path[len(prefix):]}"
    if not path.startswith("/upload/"):
        return None
    rest = path[len("/upload/") :]
    if "/" in rest:
        return rest
    metadata = dict(scope.get("headers", [])).get(b"upload-metadata", b"").decode("latin-1")
    for pair in metadata.split(","):
        name, _, value = pair.strip().partition(" ")
        if name == "filename":
            try:
                return f"{rest}/{base64.b64decode(value.strip(), validate=True).decode('utf-8')}"
            except (binascii.Error, ValueError):
                return None
    return None


class FaultMiddleware:
    def __init__(self, app: ASGIApp, registry: FaultRegistry, objects: ObjectStore):
        self.app = app
        self.registry = registry
        self.objects = objects

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fired = self.registry.fire(scope["method"], scope["path"])
        if not fired:
            await self.app(scope, receive, send)
            return
        scope.setdefault("stub.faults", []).extend(f"{fault.id}:{fault.action}" for fault in fired)
        for fault in fired:
            if fault.action == "delay":
                await asyncio.sleep(fault.delay_ms / 1000)
        action = next((fault for fault in fired if fault.action != "delay"), None)
        if action is None:
            await self.app(scope, receive, send)
            return
        await self._apply(action, scope, receive, send)

    async def _apply(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        if fault.action in ("status", "rate_limit"):
            status = 429 if fault.action == "rate_limit" else fault.status
            headers = {"Retry-After": str(fault.retry_after)} if status == 429 else None
            scope["stub.outcome"] = "fault_status"
            response = error_response(status, f"injected fault {fault.id}", headers)
            await response(scope, receive, send)
        elif fault.action == "drop":
            scope["stub.outcome"] = "dropped"
            await abort_connection(scope)
        elif fault.action == "truncate":
            await self.app(scope, receive, _truncating_send(scope, send, fault.after_bytes))
        elif fault.action == "cut_upload":
            await self.app(scope, _cutting_receive(scope, receive, fault.after_bytes or 0), send)
        else:
            await self._apply_object_fault(fault, scope, receive, send)

    async def _apply_object_fault(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        before = scope["method"] in ("GET", "HEAD")
        if before:
            self._damage_object(fault, scope)
        await self.app(scope, receive, send)
        if not before:
            self._damage_object(fault, scope)

    def _damage_object(self, fault: Fault, scope: Scope) -> None:
        logical = object_for_request(scope)
        try:
            if logical is None or not self.objects.exists(logical):
                log.info("fault %s: no stored object at %s", fault.id, scope["path"])
                return
            if fault.action == "delete_object":
                self.objects.delete(logical)
                log.info("fault %s: deleted object %s", fault.id, logical)
            else:
                self.objects.corrupt(logical, fault.offset, fault.bit)
        except (InvalidObjectPath, ValueError, OSError) as error:
            log.warning("fault %s: could not change object at %s: %s", fault.id, scope["path"], error)


def _truncating_send(scope: Scope, send: Send, after_bytes: int | None) -> Send:
    state: dict[str, Any] = {"sent": 0, "limit": after_bytes, "done": False}

    async def truncating_send(message: Message) -> None:
        if state["done"]:
            return
        if message["type"] == "http.response.start":
            if state["limit"] is None:
                length = dict(message.get("headers", [])).get(b"content-length")
                state["limit"] = int(length) // 2 if length else 0
            await send(message)
            return
        body = message.get("body", b"")
        allowed = state["limit"] - state["sent"]
        if len(body) < allowed and message.get("more_body", False):
            state["sent"] += len(body)
            await send(message)
            return
        # Never complete the response: the client must see a body shorter than announced.
        await send({"type": "http.response.body", "body": body[: max(0, allowed)], "more_body": True})
        state["done"] = True
        scope["stub.outcome"] = "truncated"
        await abort_connection(scope)

    return truncating_send


def _cutting_receive(scope: Scope, receive: Receive, after_bytes: int) -> Receive:
    state = {"received": 0, "cut": False}

    async def cutting_receive() -> Message:
        if state["cut"]:
            return {"type": "http.disconnect"}
        message = await receive()
        if message["type"] != "http.request":
            return message
        body = message.get("body", b"")
        total = state["received"] + len(body)
        if total < after_bytes or (total == after_bytes and not message.get("more_body", False)):
            state["received"] = total
            return message
        allowed = after_bytes - state["received"]
        state["cut"] = True
        scope["stub.outcome"] = "upload_cut"
        await abort_connection(scope)
        log.info("upload cut after %d bytes: %s %s", after_bytes, scope["method"], scope["path"])
        return {"type": "http.request", "body": body[:allowed], "more_body": True}

    return cutting_receive
