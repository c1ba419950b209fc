"""Serve on the platform's MQTT link for as long as it takes: any failure of the path (a dropped connection,
a half-open socket, a hung broker, a request that got no answer) means drop the link, back off, reconnect. Only a
broker that refuses us for good (:class:`mqtt.bus.BrokerRefusal`) ends it, with that reason."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from mqtt.bus import BrokerRefusal, BusError
from mqtt.link_options import LinkOptions
from mqtt.service_link import ServiceLink
from runtime.backoff import Backoff

log = structlog.get_logger("shian.link")

T = TypeVar("T")

SESSION_LOST = (
    "the broker had no session for this client: messages queued for it while it was away are lost "
    "(the broker restarted without persistence, or the session expired)"
)


async def serve_connected(
    options: LinkOptions,
    serve: Callable[[ServiceLink], Awaitable[T]],
    *,
    name: str,
    stop: asyncio.Event | None = None,
) -> T | None:
    """Run ``serve`` on a connected link and return what it returns; reconnect with capped backoff whenever the
    link fails. Log events are named after ``name`` (``gateway.connected``, ``rules.disconnected``…).

    ``stop`` ends the wait for a broker that is away, whether between attempts or in the middle of one, and
    returns None: a platform stopping while its broker is unreachable must not sit out a backoff (once
    connected, ``serve`` itself is told to stop by its owner)."""
    backoff = Backoff()
    connected_before = False
    while stop is None or not stop.is_set():
        try:
            link = ServiceLink(options)
            if not await _connected(link, stop):
                return None
            async with contextlib.AsyncExitStack() as connection:
                connection.push_async_exit(link)
                log.info(
                    f"{name}.connected",
                    host=options.host,
                    port=options.port,
                    client_id=options.client_id,
                    session_present=link.session_present,
                )
                if options.session_expiry_s and connected_before and not link.session_present:
                    log.warning(f"{name}.session_lost", client_id=options.client_id, meaning=SESSION_LOST)
                connected_before = True
                backoff.reset()
                return await serve(link)
        except BrokerRefusal:
            raise
        except BusError as exc:
            delay = backoff.next_delay()
            log.warning(f"{name}.disconnected", error=str(exc), retry_in_s=delay)
            if stop is None:
                await asyncio.sleep(delay)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
    return None


async def _connected(link: ServiceLink, stop: asyncio.Event | None) -> bool:
    """Open ``link`` (a :class:`BusError` when it cannot be); False if ``stop`` came first."""
    if stop is None:
        await link.__aenter__()
        return True
    opening = asyncio.ensure_future(link.__aenter__())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([opening, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if opening.done():
        opening.result()
        return True
    opening.cancel()
    with contextlib.suppress(asyncio.CancelledError, BusError):
        await opening
    return False
