"""Serve the console inside the platform's event loop (uvicorn), so that its alert feed and the rules engine
share one loop, and stop it with the platform."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

#: Seconds open connections (event streams) get to finish when the console stops.
GRACE_S = 2


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the platform owns SIGINT and SIGTERM: uvicorn must neither take nor re-raise them


class ConsoleServer:
    """Binds at once (a taken port fails at start-up; port 0 gets a real one); serves when :meth:`serve` runs."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_server((host, port), family=family)
        self.host, self.port = self.socket.getsockname()[:2]
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=GRACE_S
        )
        self._server = _EmbeddedServer(config)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def serve(self) -> None:
        """Serve until :meth:`request_stop` (or cancellation)."""
        try:
            await self._server.serve(sockets=[self.socket])
        finally:
            self.socket.close()

    def request_stop(self) -> None:
        self._server.should_exit = True
