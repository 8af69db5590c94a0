"""Size limit for request bodies outside TUS uploads.

Archive API bodies are small JSON documents, so the middleware reads them whole, up to
``max_json_body_bytes``, before the route runs. A larger body gets 413 without the rest being
read. TUS create and append routes stream and are limited by the upload length
and the token's ``maxLen`` instead.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server_stub.errors import error_response

STREAMED_METHODS = {"POST", "PATCH"}


def is_streamed_upload(method: str, path: str) -> bool:
    return method in STREAMED_METHODS and path.startswith("/upload/")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_streamed_upload(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                declared_size = int(declared)
            except ValueError:
                await error_response(400, "Content-Length is not a number")(scope, receive, send)
                return
            if declared_size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        body = bytearray()
        disconnected = False
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = True
                break
            body.extend(message.get("body", b""))
            if len(body) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), disconnected, receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body exceeds the limit of {self.max_bytes} bytes"
        await error_response(413, message)(scope, receive, send)


def _replay(body: bytes, disconnected: bool, receive: Receive) -> Receive:
    sent = {"body": False}

    async def replay_receive() -> Message:
        if not sent["body"]:
            sent["body"] = True
            if disconnected:
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay_receive
