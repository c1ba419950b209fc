"""Publish receipts and dead-letter notices without holding up ingestion.

QoS 1 publishes wait for the broker's PUBACK; awaiting each one in the ingest loop would cost a round trip per
message. A few workers publish from a queue instead, bounded so that a slow broker pushes back.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from gateway.bus import BusClient

log = structlog.get_logger("shian.gateway")

#: Publishes in flight at once; paho is fastest with about 100 un-acked QoS 1 messages.
WORKERS = 64


class Publisher:
    def __init__(self, bus: BusClient, *, workers: int = WORKERS) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._workers = [asyncio.create_task(self._work()) for _ in range(workers)]
        self.failed = 0

    def publish(self, topic: str, payload: bytes) -> None:
        self._queue.put_nowait((topic, payload))

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def _work(self) -> None:
        while True:
            topic, payload = await self._queue.get()
            try:
                await self._bus.publish(topic, payload, qos=1)
            except Exception as exc:
                self.failed += 1
                log.warning("gateway.publish_failed", topic=topic, error=str(exc))
            finally:
                self._queue.task_done()

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until everything queued so far has been published (or the timeout passes)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout_s)

    async def close(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
