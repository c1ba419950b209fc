"""Keep a gateway connected: reconnect with capped exponential backoff while the broker is away."""

from __future__ import annotations

import asyncio

import structlog

from gateway.service import Gateway
from mqtt.bus import BusError
from mqtt.link_options import LinkOptions
from mqtt.service_link import ServiceLink
from runtime.backoff import Backoff

log = structlog.get_logger("shian.gateway")


async def run_gateway(gateway: Gateway, options: LinkOptions) -> None:
    """Serve until :meth:`Gateway.request_stop` (returns after draining) or cancellation.

    ``options`` should ask for a persistent session, so that whatever the gateway has not acknowledged waits in
    the broker across disconnects.
    """
    backoff = Backoff()
    while True:
        try:
            async with ServiceLink(options) as link:
                log.info("gateway.connected", host=options.host, port=options.port, client_id=options.client_id)
                backoff = Backoff()
                await gateway.serve(link)
                log.info("gateway.drained", **gateway.stats.snapshot())
                return
        except BusError as exc:
            delay = backoff.next_delay()
            log.warning("gateway.disconnected", error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
