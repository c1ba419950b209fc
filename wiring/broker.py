"""Where the platform's broker is: the configured one, or a managed Mosquitto for as long as it runs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog

from broker_config.managed import ManagedMosquitto
from mqtt.link_options import LinkOptions
from wiring.settings import Settings

log = structlog.get_logger("shian")


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int


@contextlib.asynccontextmanager
async def broker_for(settings: Settings) -> AsyncIterator[BrokerAddress]:
    """The configured broker, or a managed Mosquitto that lives exactly as long as the context."""
    if settings.mqtt.host is not None:
        yield BrokerAddress(settings.mqtt.host, settings.mqtt.port or 1883)
        return
    broker = ManagedMosquitto(settings.data_dir / "broker", port=settings.mqtt.port)
    log.info("broker.starting", config=str(broker.config_path))
    await asyncio.to_thread(broker.start)
    log.info("broker.started", host=broker.host, port=broker.port, log=str(broker.log_path))
    try:
        yield BrokerAddress(broker.host, broker.port)
    finally:
        await asyncio.to_thread(broker.stop)
        log.info("broker.stopped")


def gateway_link_options(settings: Settings, address: BrokerAddress) -> LinkOptions:
    """The gateway's connection: its client id names its persistent session."""
    return LinkOptions(
        host=address.host,
        port=address.port,
        client_id=settings.gateway.client_id,
        username=settings.mqtt.username,
        password=settings.mqtt.password,
        keepalive_s=settings.mqtt.keepalive_s,
        session_expiry_s=settings.mqtt.session_expiry_s,
        receive_maximum=settings.gateway.receive_maximum,
        tls_ca=settings.mqtt.tls_ca,
        tls_cert=settings.mqtt.tls_cert,
        tls_key=settings.mqtt.tls_key,
    )
