"""The uiautomator2 server of the simulated device: ``app_process`` plus JSON-RPC over HTTP.

uiautomator2 (the Python client) pushes ``u2.jar``, starts it with
``CLASSPATH=/data/local/tmp/u2.jar app_process / com.wetest.uia2.Main -p 9008`` over a shell
stream that stays open while the server runs, then sends HTTP requests (``GET /ping``,
``POST /jsonrpc/0``) through adb device sockets (``tcp:9008``). This module serves them from
the foreground screen's view tree. Closing the shell stream stops the server; a crash
fault ends it from the device side, and the client sees the stream close and the port refuse.
"""

from __future__ import annotations

import base64
import http.server
import io
import json
import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from PIL import Image

from harness.android.double import ui_actions
from harness.android.double.filesystem import FileSystemError
from harness.android.double.shell import CommandContext, command
from harness.android.double.ui_model import (
    SCREEN_HEIGHT, SCREEN_WIDTH, UiNode, describe_selector, object_info,
)

if TYPE_CHECKING:
    from harness.android.double.device import SimulatedDevice

log = logging.getLogger(__name__)

SERVER_CLASS = "com.wetest.uia2.Main"
NOT_FOUND_CODE = -32002
METHOD_NOT_FOUND_CODE = -32601
WAIT_POLL_S = 0.1


class UiServerCrash(Exception):
    """Raised inside a request to simulate the server process dying mid-call."""


class UiAutomatorServer:
    """One running uiautomator2 server on one device port."""

    def __init__(self, device: SimulatedDevice, port: int) -> None:
        self.device = device
        self.port = port
        self.stopped = threading.Event()

    @property
    def endpoint(self) -> str:
        return f"tcp:{self.port}"

    def serve_connection(self, sock: socket.socket, closed: threading.Event) -> None:
        """Serve one HTTP connection that arrived through ``adb`` on the device port."""
        if self.stopped.is_set():
            return
        try:
            _RequestHandler(sock, ("127.0.0.1", 0), self)  # type: ignore[arg-type]
        except (ConnectionError, OSError):
            pass

    def crash(self) -> None:
        """End the server as a crashed process would: port closed, shell stream ended."""
        log.info("uiautomator2 server on %s port %d crashed (fault)", self.device.serial, self.port)
        self.device.log("AndroidRuntime", "FATAL EXCEPTION: main (uiautomator2 server)", level="E", pid=7000)
        self.device.unlisten(self.endpoint)
        self.stopped.set()

    # JSON-RPC ------------------------------------------------------------------------------
    def call(self, method: str, params: Any) -> Any:
        if self.device.faults.take_ui_crash(method):
            self.crash()
            raise UiServerCrash(method)
        handler = getattr(self, f"rpc_{method}", None)
        if handler is None:
            raise _RpcError(METHOD_NOT_FOUND_CODE, f"Method not found: {method}")
        if isinstance(params, dict):
            return handler(**params) if not _is_selector(params) else handler(params)
        return handler(*(params or []))

    def _find(self, selector: dict[str, Any]) -> UiNode:
        nodes = self.device.foreground_screen().find(selector)
        if not nodes:
            raise _RpcError(NOT_FOUND_CODE,
                            f"androidx.test.uiautomator.UiObjectNotFoundException: {describe_selector(selector)}")
        return nodes[0]

    def _wait(self, selector: dict[str, Any], timeout_ms: float, present: bool) -> bool:
        deadline = time.monotonic() + max(0.0, timeout_ms) / 1000
        while True:
            found = bool(self.device.foreground_screen().find(selector))
            if found == present:
                return True
            if time.monotonic() >= deadline or self.stopped.is_set():
                return False
            time.sleep(WAIT_POLL_S)

    def rpc_deviceInfo(self) -> dict[str, Any]:  # noqa: N802 (JSON-RPC method names)
        return {
            "currentPackageName": self.device.foreground_screen().package,
            "displayHeight": SCREEN_HEIGHT, "displayWidth": SCREEN_WIDTH, "displayRotation": 0,
            "displaySizeDpX": 411, "displaySizeDpY": 891, "naturalOrientation": True,
            "productName": self.device.properties["ro.product.name"], "screenOn": True,
            "sdkInt": int(self.device.properties["ro.build.version.sdk"]),
        }

    def rpc_dumpWindowHierarchy(self, compressed: bool = False, max_depth: int = 50,  # noqa: N802
                                root_in_active: bool | None = None) -> str:
        return self.device.foreground_screen().to_xml()

    def rpc_objInfo(self, selector: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        return object_info(self._find(selector))

    def rpc_objInfoOfAllInstances(self, selector: dict[str, Any]) -> list[dict[str, Any]]:  # noqa: N802
        return [object_info(node) for node in self.device.foreground_screen().find(selector)]

    def rpc_exist(self, selector: dict[str, Any]) -> bool:
        return bool(self.device.foreground_screen().find(selector))

    def rpc_count(self, selector: dict[str, Any]) -> int:
        return len(self.device.foreground_screen().find(selector))

    def rpc_waitForExists(self, selector: dict[str, Any], timeout_ms: float = 0) -> bool:  # noqa: N802
        return self._wait(selector, timeout_ms, present=True)

    def rpc_waitUntilGone(self, selector: dict[str, Any], timeout_ms: float = 0) -> bool:  # noqa: N802
        return self._wait(selector, timeout_ms, present=False)

    def rpc_getText(self, selector: dict[str, Any]) -> str:  # noqa: N802
        return self._find(selector).text

    def rpc_setText(self, selector: dict[str, Any], text: str) -> bool:  # noqa: N802
        return ui_actions.set_text(self._find(selector), text)

    def rpc_clearTextField(self, selector: dict[str, Any]) -> None:  # noqa: N802
        ui_actions.set_text(self._find(selector), "")

    def rpc_click(self, first: Any, y: float | None = None, duration_ms: int | None = None) -> bool:
        if isinstance(first, dict):
            return ui_actions.activate(self.device, self._find(first))
        return ui_actions.tap(self.device, float(first), float(y or 0))

    def rpc_longClick(self, first: Any, y: float | None = None, duration_ms: int | None = None) -> bool:  # noqa: N802
        return self.rpc_click(first, y)

    def rpc_pressKey(self, key: str) -> bool:  # noqa: N802
        return ui_actions.press_key(self.device, key)

    def rpc_pressKeyCode(self, code: int, meta: int | None = None) -> bool:  # noqa: N802
        return ui_actions.press_key(self.device, int(code))

    def rpc_takeScreenshot(self, scale: float = 1, quality: int = 80) -> str:  # noqa: N802
        png = ui_actions.screenshot_png(self.device)
        image = Image.open(io.BytesIO(png)).convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=int(quality))
        return base64.b64encode(buffer.getvalue()).decode("ascii")

    def rpc_setClipboard(self, label: str | None, text: str) -> None:  # noqa: N802
        self.device.clipboard = text

    def rpc_getClipboard(self) -> str:  # noqa: N802
        return self.device.clipboard

    def rpc_getLastToast(self) -> None:  # noqa: N802
        return None

    def rpc_swipe(self, *args: Any) -> bool:
        return True

    def rpc_wakeUp(self) -> None:  # noqa: N802
        return None

    def rpc_freezeRotation(self, freeze: bool = True) -> None:  # noqa: N802
        return None


class _RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _is_selector(params: dict[str, Any]) -> bool:
    return "mask" in params


class _RequestHandler(http.server.BaseHTTPRequestHandler):
    server: UiAutomatorServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("ui server: " + format, *args)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/ping":
            self._reply(200, b"pong", "text/plain")
        else:
            self._reply(404, b"not found", "text/plain")

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/jsonrpc/0":
            self._reply(404, b"not found", "text/plain")
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self._reply_json({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}})
            return
        request_id = request.get("id")
        try:
            result = self.server.call(str(request.get("method")), request.get("params"))
        except UiServerCrash:
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        except _RpcError as error:
            self._reply_json({"jsonrpc": "2.0", "id": request_id,
                              "error": {"code": error.code, "message": error.message, "data": error.message}})
            return
        except TypeError as error:
            self._reply_json({"jsonrpc": "2.0", "id": request_id,
                              "error": {"code": -32602, "message": f"Invalid params: {error}"}})
            return
        self._reply_json({"jsonrpc": "2.0", "id": request_id, "result": result})

    def _reply_json(self, payload: dict[str, Any]) -> None:
        self._reply(200, json.dumps(payload).encode("utf-8"), "application/json")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@command("app_process")
def app_process(ctx: CommandContext, args: list[str]) -> int:
    """Run the uiautomator2 server until the shell stream closes or the server crashes."""
    classpath = ctx.env.get("CLASSPATH", "")
    if SERVER_CLASS not in args:
        ctx.err("Error: the double runs only the uiautomator2 server with app_process\n")
        return 1
    try:
        ctx.device.fs.read_bytes(ctx.identity, ctx.path(classpath))
    except FileSystemError:
        ctx.err(f"Error: Could not find class '{SERVER_CLASS}' (classpath {classpath!r})\n")
        return 1
    port = int(args[args.index("-p") + 1]) if "-p" in args else 9008

    if f"tcp:{port}" in ctx.device.listeners:
        ctx.err("java.lang.IllegalStateException: UiAutomationService "
                "android.accessibilityservice.IAccessibilityServiceClient$Stub$Proxy already registered!\n")
        return 1

    server = UiAutomatorServer(ctx.device, port)
    ctx.device.ui_servers[port] = server
    ctx.device.listen(server.endpoint, server.serve_connection)
    ctx.out("[server] INFO: [UiAutomator2Server] Starting Server\n")
    ctx.device.log("UiAutomator2Server", f"server started on port {port}", pid=7000)
    try:
        while not ctx.cancelled.wait(0.2):
            if server.stopped.is_set():
                ctx.err("Process crashed.\n")
                return 1
    finally:
        server.stopped.set()
        ctx.device.unlisten(server.endpoint)
        ctx.device.ui_servers.pop(port, None)
        ctx.device.log("UiAutomator2Server", f"server on port {port} stopped", pid=7000)
    return 0
