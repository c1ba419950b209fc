"""Keep a gateway connected: reconnect with capped exponential backoff while the broker is away."""

from __future__ import annotations

import asyncio

import structlog

from gateway.bus import BusError
from gateway.link_options import LinkOptions
from gateway.service import Gateway
from gateway.service_link import ServiceLink

log = structlog.get_logger("shian.gateway")

BACKOFF_START_S = 0.5
BACKOFF_CAP_S = 30.0


async def run_gateway(gateway: Gateway, options: LinkOptions) -> None:
    """Serve until :meth:`Gateway.request_stop` (returns after draining) or cancellation.

    ``options`` should ask for a persistent session, so that whatever the gateway has not acknowledged waits in
    the broker across disconnects.
    """
    backoff = BACKOFF_START_S
    while True:
        try:
            async with ServiceLink(options) as link:
                log.info("gateway.connected", host=options.host, port=options.port, client_id=options.client_id)
                backoff = BACKOFF_START_S
                await gateway.serve(link)
                log.info("gateway.drained", **gateway.stats.snapshot())
                return
        except BusError as exc:
            log.warning("gateway.disconnected", error=str(exc), retry_in_s=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_CAP_S)
