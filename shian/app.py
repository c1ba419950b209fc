"""Wire the parts together for ``shian run`` and ``shian demo``: broker, gateway and, for the demo, devices."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

import structlog

from broker_config.managed import ManagedMosquitto
from devices.messages import DeadLetter
from devices.registry import Registry, load_registry
from devices.topics import DEADLETTER_SUBSCRIPTION
from gateway.mqtt_link import LinkOptions, MqttLink
from gateway.runner import run_gateway
from gateway.service import Gateway
from gateway.stats import GatewayStats
from shian.clock import SystemClock
from shian.config import Settings
from simulators.demo import DemoOptions, run_fleet

log = structlog.get_logger("shian")

STATS_EVERY_S = 5.0


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


async def _report_stats(stats: GatewayStats) -> None:
    while True:
        await asyncio.sleep(STATS_EVERY_S)
        log.info("gateway.stats", **stats.snapshot())


async def _watch_dead_letters(address: BrokerAddress) -> None:
    """What an operator would see on the dead-letter topic."""
    options = LinkOptions(host=address.host, port=address.port, client_id="shian-demo-deadletter-watch")
    async with MqttLink(options) as link:
        await link.subscribe([DEADLETTER_SUBSCRIPTION])
        async for incoming in link.messages():
            letter = DeadLetter.model_validate_json(incoming.payload, strict=False)
            log.warning(
                "deadletter.received",
                reason=letter.reason,
                detail=letter.detail,
                client_id=letter.client_id,
                topic=letter.topic,
            )


def gateway_link_options(settings: Settings, address: BrokerAddress) -> LinkOptions:
    return LinkOptions(
        host=address.host,
        port=address.port,
        client_id=settings.gateway.client_id,
        username=settings.mqtt.username,
        password=settings.mqtt.password,
        keepalive_s=settings.mqtt.keepalive_s,
        session_expiry_s=settings.mqtt.session_expiry_s,
        manual_ack=True,
    )


async def run_platform(
    settings: Settings, *, demo: bool = False, duration_s: float | None = None, registry: Registry | None = None
) -> GatewayStats:
    """Run until cancelled (Ctrl-C) or for ``duration_s``; return the gateway's counters."""
    registry = registry or load_registry(settings.registry)
    clock = SystemClock()
    gateway = Gateway(registry, clock, canteens=settings.gateway.canteens)
    async with broker_for(settings) as address:
        jobs: list[Coroutine[Any, Any, None]] = [
            run_gateway(gateway, gateway_link_options(settings, address)),
            _report_stats(gateway.stats),
        ]
        tasks = [asyncio.create_task(job) for job in jobs]
        try:
            if demo:
                # Devices start once the gateway listens, so the demo's first messages are not missed.
                await asyncio.wait_for(gateway.subscribed.wait(), timeout=30)
                tasks += [
                    asyncio.create_task(_watch_dead_letters(address)),
                    asyncio.create_task(run_fleet(registry, DemoOptions(host=address.host, port=address.port), clock)),
                ]
            if duration_s is None:
                await asyncio.gather(*tasks)
            else:
                done, _ = await asyncio.wait(tasks, timeout=duration_s, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    task.result()  # a task that failed early is an error, not a quiet end
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            log.info("gateway.stats", final=True, **gateway.stats.snapshot())
    return gateway.stats
