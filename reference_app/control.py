"""The control API: loopback HTTP with JSON bodies, the reference app's stand-in for its UI.

``CONTROL_API.md`` documents every route. Each request runs in its own thread, so a long
wait (``/log/wait``, a backup with ``wait``) does not block other requests.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from reference_app.app import ActionError, App
from reference_app.applog import AppLogHandler

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024 * 1024
MAX_LOG_WAIT_S = 600.0

Handler = Callable[[dict[str, Any], dict[str, str]], Any]


class ControlServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, app: App, log_handler: AppLogHandler, port: int = 0):
        self.app = app
        self.log_handler = log_handler
        self.shutdown_requested = threading.Event()
        self.routes = self._routes()
        super().__init__(("127.0.0.1", port), ControlRequestHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def _routes(self) -> dict[tuple[str, str], Handler]:
        app = self.app
        return {
            ("GET", "/health"): lambda body, query: app.health(),
            ("POST", "/shutdown"): lambda body, query: self._shutdown(),
            ("POST", "/server"): lambda body, query: app.point_at(body),
            ("POST", "/account"): lambda body, query: app.register(body),
            ("GET", "/clock"): lambda body, query: app.clock_state(),
            ("POST", "/clock"): lambda body, query: app.set_clock(body),
            ("POST", "/clock/advance"): lambda body, query: app.advance_clock(body),
            ("POST", "/scenario"): lambda body, query: app.load_scenario(body),
            ("POST", "/scenario/messages"): lambda body, query: app.load_scenario_messages(body),
            ("POST", "/messages/send"): lambda body, query: app.add_message(body, "outgoing"),
            ("POST", "/messages/receive"): lambda body, query: app.add_message(body, "incoming"),
            ("POST", "/messages/read"): lambda body, query: app.mark_read(body),
            ("POST", "/messages/view"): lambda body, query: app.view(body),
            ("POST", "/messages/react"): lambda body, query: app.react(body),
            ("POST", "/messages/edit"): lambda body, query: app.edit(body),
            ("POST", "/messages/delete"): lambda body, query: app.delete(body),
            ("GET", "/chats"): lambda body, query: app.chats(),
            ("GET", "/messages"): lambda body, query: app.messages(query.get("chat")),
            ("POST", "/backups/enable"): lambda body, query: app.enable_backups(body),
            ("POST", "/backups/run"): lambda body, query: app.run_backup(body),
            ("GET", "/backups/status"): lambda body, query: app.backup_status(),
            ("POST", "/backups/regenerate-key"): lambda body, query: app.regenerate_key(),
            ("POST", "/backups/disable"): lambda body, query: app.disable_backups(),
            ("POST", "/backups/tier"): lambda body, query: app.set_tier(body),
            ("POST", "/backups/time"): lambda body, query: app.set_backup_time(body),
            ("POST", "/backups/refresh"): lambda body, query: app.refresh_now(),
            ("POST", "/restore"): lambda body, query: app.restore(body),
            ("GET", "/log"): lambda body, query: self._read_log(query),
            ("GET", "/log/wait"): lambda body, query: self._wait_log(query),
        }

    def _shutdown(self) -> dict[str, Any]:
        self.shutdown_requested.set()
        return {"ok": True}

    def _read_log(self, query: dict[str, str]) -> dict[str, Any]:
        since = _int_query(query, "since", 0)
        lines = self.log_handler.read(since)
        return {"lines": [{"offset": line.offset, "text": line.text} for line in lines], "end": self.log_handler.end()}

    def _wait_log(self, query: dict[str, str]) -> dict[str, Any]:
        pattern = query.get("pattern")
        if not pattern:
            raise ActionError(400, "bad-request", "missing query parameter 'pattern'")
        since = _int_query(query, "since", 0)
        timeout = min(float(_int_query(query, "timeout_s", 30)), MAX_LOG_WAIT_S)
        try:
            re.compile(pattern)
        except re.error as error:
            raise ActionError(400, "bad-request", f"invalid pattern {pattern!r}: {error}") from None
        line = self.log_handler.wait_for(pattern, since, timeout)
        if line is None:
            raise ActionError(408, "timeout", f"no log line matched {pattern!r} within {timeout:g} s")
        return {"line": {"offset": line.offset, "text": line.text}}


def _int_query(query: dict[str, str], name: str, default: int) -> int:
    value = query.get(name)
    if value is None:
        return default
    try:
        return int(float(value))
    except ValueError:
        raise ActionError(400, "bad-request", f"query parameter {name!r} must be a number, got {value!r}") from None


class ControlRequestHandler(BaseHTTPRequestHandler):
    server: ControlServer
    protocol_version = "HTTP/1.1"
    # The headers and the body of a reply go out in two writes. With Nagle's algorithm on, the
    # second write waits for the client's delayed ACK: about 44 ms per request, 0.6 ms without.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server signature
        log.debug("control %s", format % args)

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        handler = self.server.routes.get((method, parts.path))
        try:
            if handler is None:
                allowed = sorted(m for m, p in self.server.routes if p == parts.path)
                if allowed:
                    raise ActionError(405, "method-not-allowed", f"{method} {parts.path} is not allowed; use {', '.join(allowed)}")
                raise ActionError(404, "not-found", f"no control route {method} {parts.path}; see CONTROL_API.md")
            body = self._body() if method == "POST" else {}
            self._reply(200, handler(body, query))
        except ActionError as error:
            self._reply(error.status, {"error": {"code": error.code, "message": str(error)}})
        except Exception as error:  # noqa: BLE001 - a bug in the app must not kill the control API
            log.exception("control request %s %s failed", method, parts.path)
            self._reply(500, {"error": {"code": "internal", "message": f"{type(error).__name__}: {error}"}})

    def _body(self) -> dict[str, Any]:
        length_text = self.headers.get("Content-Length", "0")
        try:
            length = int(length_text)
        except ValueError:
            raise ActionError(400, "bad-request", f"invalid Content-Length {length_text!r}") from None
        if length > MAX_BODY_BYTES:
            raise ActionError(413, "too-large", f"request body of {length} bytes is larger than {MAX_BODY_BYTES}")
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise ActionError(400, "bad-request", f"request body is not valid JSON: {error}") from None
        if not isinstance(body, dict):
            raise ActionError(400, "bad-request", "request body must be a JSON object")
        return body

    def _reply(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status, HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
