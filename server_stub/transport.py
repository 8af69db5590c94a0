"""Access to a request's TCP connection, so a fault can drop it without any response.

ASGI gives an application no handle on the socket, and uvicorn responds with 500 when an
application fails before responding. The stub therefore runs uvicorn with this h11 protocol
subclass (passed as ``Config(http=...)``), which files each connection's transport under
(server address, client address), the two values every ASGI scope carries.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.utils import get_local_addr, get_remote_addr

_transports: dict[tuple[Any, Any], asyncio.BaseTransport] = {}


def _key(server: Any, client: Any) -> tuple[Any, Any]:
    return (tuple(server) if server else None, tuple(client) if client else None)


class TrackedH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._tracking_key = _key(get_local_addr(transport), get_remote_addr(transport))
        _transports[self._tracking_key] = transport

    def connection_lost(self, exc: Exception | None) -> None:
        _transports.pop(getattr(self, "_tracking_key", None), None)
        super().connection_lost(exc)


async def abort_connection(scope: dict[str, Any]) -> bool:
    """Reset the connection of ``scope`` and let uvicorn notice; False if it is not tracked
    (a server started without TrackedH11Protocol)."""
    transport = _transports.get(_key(scope.get("server"), scope.get("client")))
    if transport is None:
        return False
    transport.abort()
    # connection_lost runs on a later loop turn; after it uvicorn sends nothing more.
    for _ in range(3):
        await asyncio.sleep(0)
    return True
