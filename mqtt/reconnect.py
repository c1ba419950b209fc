"""Serve on the platform's MQTT link for as long as it takes: any failure of the path (a dropped connection,
a half-open socket, a hung broker, a request that got no answer) means drop the link, back off, reconnect. Only a
broker that refuses us for good (:class:`mqtt.bus.BrokerRefusal`) ends it, with that reason."""

from __future__ import annotations

import asyncio
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


async def serve_connected(options: LinkOptions, serve: Callable[[ServiceLink], Awaitable[T]], *, name: str) -> T:
    """Run ``serve`` on a connected link and return what it returns; reconnect with capped backoff whenever the
    link fails. Log events are named after ``name`` (``gateway.connected``, ``rules.disconnected``…)."""
    backoff = Backoff()
    connected_before = False
    while True:
        try:
            async with ServiceLink(options) as link:
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
            await asyncio.sleep(delay)
