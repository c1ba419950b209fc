"""A TCP proxy on loopback that a test can make stop forwarding: the half-open path of a dead network, where
neither side hears that the other is gone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class StallingProxy:
    """Forwards bytes between clients and ``upstream``, except that what a client sends after its first
    ``stall_after_reads`` reads is silently swallowed (nothing is closed): with 1, its CONNECT passes and the
    broker's CONNACK comes back, but its SUBSCRIBE never arrives. :meth:`resume` forwards everything again, for
    the connections made from then on."""

    def __init__(self, upstream_host: str, upstream_port: int, *, stall_after_reads: int | None = None) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.stall_after_reads = stall_after_reads
        self.host, self.port = "127.0.0.1", 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def resume(self) -> None:
        self.stall_after_reads = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[StallingProxy]:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        pumps = [
            asyncio.create_task(self._pump(client_reader, upstream_writer, self.stall_after_reads)),
            asyncio.create_task(self._pump(upstream_reader, client_writer, None)),
        ]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        for writer in (client_writer, upstream_writer):
            writer.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reads: int | None) -> None:
        while data := await reader.read(65536):
            if reads is not None:
                if reads <= 0:
                    continue  # this connection has stalled by itself: swallow, never close
                reads -= 1
            writer.write(data)
            await writer.drain()
