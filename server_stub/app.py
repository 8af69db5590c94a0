"""Application factory for the app-facing port: archive API, attachment form, CDN.

Middleware, outermost first: the recorder (so every exchange is recorded as the client saw
it, injected faults included), the fault injector, then the body size limit.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp

from server_stub import routes_account, routes_archive, routes_attachments, routes_cdn, routes_media
from server_stub.errors import install_error_handlers
from server_stub.faults import FaultMiddleware
from server_stub.limits import BodyLimitMiddleware
from server_stub.recorder import RecorderMiddleware
from server_stub.state import StubState

DESCRIPTION = """\
A stand-in for Signal's backup ("archive") service and its TUS CDN, for testing clients.
Account routes take HTTP Basic `<aci>.<device_id>:<password>`; archive routes take
zero-knowledge auth (`X-Signal-ZK-Auth`, `X-Signal-ZK-Auth-Signature`) and reject
`Authorization` with 400. Errors are `{"code": <status>, "message": "..."}`. Every request
is recorded, and faults can be injected on any route, through the admin API on a separate
loopback port.
"""


def create_fastapi_app(state: StubState) -> FastAPI:
    app = FastAPI(
        title="backup-harness stub server",
        description=DESCRIPTION,
        version="1",
        docs_url=None,
        redoc_url=None,
    )
    app.state.stub = state
    install_error_handlers(app)
    for module in (routes_account, routes_archive, routes_media, routes_attachments, routes_cdn):
        app.include_router(module.router)
    return app


def create_app(state: StubState) -> ASGIApp:
    app: ASGIApp = create_fastapi_app(state)
    app = BodyLimitMiddleware(app, state.config.max_json_body_bytes)
    app = FaultMiddleware(app, state.faults, state.objects)
    return RecorderMiddleware(app, state.recordings, state.clock.now)
