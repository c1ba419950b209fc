"""Keep a gateway connected: reconnect with capped exponential backoff while the broker is away."""

from __future__ import annotations

import structlog

from gateway.service import Gateway
from mqtt.link_options import LinkOptions
from mqtt.reconnect import serve_connected
from mqtt.service_link import ServiceLink

log = structlog.get_logger("shian.gateway")


async def run_gateway(gateway: Gateway, options: LinkOptions) -> None:
    """Serve until :meth:`Gateway.request_stop` (returns after draining) or cancellation, reconnecting whenever
    the link fails; a broker that refuses the gateway for good (:class:`mqtt.bus.BrokerRefusal`) ends it.

    ``options`` should ask for a persistent session, so that whatever the gateway has not acknowledged waits in
    the broker across disconnects.
    """

    async def serve(link: ServiceLink) -> None:
        await gateway.serve(link)
        log.info("gateway.drained", **gateway.stats.snapshot())

    # a stop also ends the wait for a broker that is away: there is nothing to drain then
    await serve_connected(options, serve, name="gateway", stop=gateway.stopping)
