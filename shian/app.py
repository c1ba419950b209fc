"""Wire the parts together for ``shian run`` and ``shian demo``: broker, gateway and, for the demo, devices."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from broker_config.managed import ManagedMosquitto
from devices.messages import DeadLetter
from devices.registry import Registry, load_registry
from devices.topics import DEADLETTER_SUBSCRIPTION
from gateway.entries import SkewLimits
from gateway.metrics import serve_metrics
from gateway.mqtt_link import LinkOptions, MqttLink
from gateway.runner import run_gateway
from gateway.service import Gateway
from gateway.spool import Spool
from gateway.stats import GatewayStats
from shian.clock import Clock, SystemClock
from shian.config import ConfigError, Settings
from simulators.demo import DemoOptions, run_fleet
from storage.drain import StorageDrain
from storage.local import LocalStore
from storage.schema import gateway_point
from storage.writers import InfluxV1Writer, InfluxV2Writer, PointWriter, WriteError

log = structlog.get_logger("shian")

STATS_EVERY_S = 5.0
DRAIN_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0


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


async def _report_stats(instance: str, stats: GatewayStats, drain: StorageDrain) -> None:
    """Every few seconds: the counters in the log, and a `gateway` point for the platform-health board."""
    while True:
        await asyncio.sleep(STATS_EVERY_S)
        log.info("gateway.stats", **stats.snapshot())
        log.info("storage.stats", **drain.stats.snapshot())
        point = gateway_point(
            instance,
            dt.datetime.now(dt.UTC),
            received=stats.received,
            stored=stats.stored,
            duplicates=stats.duplicates,
            rejected_by_reason=dict(stats.rejected),
            spool_backlog=drain.stats.backlog,
            write_lag_s=drain.stats.oldest_unwritten_age_s,
        )
        try:
            await asyncio.to_thread(drain.writer.write, [point])
        except WriteError as exc:  # a health sample is not a record: skip it, the next one comes soon
            log.warning("storage.health_point_skipped", error=str(exc))


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
        tls_ca=settings.mqtt.tls_ca,
        tls_cert=settings.mqtt.tls_cert,
        tls_key=settings.mqtt.tls_key,
    )


def spool_path(settings: Settings) -> Path:
    """One spool per gateway identity: two gateways in one data directory never share state."""
    return settings.data_dir / f"spool-{settings.gateway.client_id}.sqlite"


def build_gateway(settings: Settings, registry: Registry, clock: Clock) -> Gateway:
    g = settings.gateway
    spool = Spool(spool_path(settings), dedup_window=dt.timedelta(days=g.dedup_window_days))
    return Gateway(
        registry,
        clock,
        spool,
        canteens=g.canteens,
        skew=SkewLimits(future=dt.timedelta(seconds=g.skew_future_s), past=dt.timedelta(seconds=g.skew_past_s)),
        max_batch=g.max_batch,
    )


def build_writer(settings: Settings) -> PointWriter:
    """The store the configuration names: the embedded SQLite one unless an InfluxDB is configured."""
    st = settings.storage
    # StorageSettings has checked that the chosen backend has what it needs; _given only narrows the types.
    if st.backend == "influxdb1":
        return InfluxV1Writer(
            _given(st.url),
            st.database,
            retention_policy=st.retention_policy,
            username=st.username,
            password=st.password,
        )
    if st.backend == "influxdb2":
        return InfluxV2Writer(_given(st.url), org=_given(st.org), bucket=_given(st.bucket), token=_given(st.token))
    return LocalStore(local_store_path(settings), retention=dt.timedelta(days=st.local_retention_days))


def _given(value: str | None) -> str:
    if value is None:
        raise ConfigError("storage settings are incomplete")
    return value


def local_store_path(settings: Settings) -> Path:
    return settings.storage.local_path or settings.data_dir / "store.sqlite"


def build_drain(settings: Settings, registry: Registry, clock: Clock) -> StorageDrain:
    return StorageDrain(
        Spool(spool_path(settings)),
        registry,
        build_writer(settings),
        clock,
        batch_size=settings.storage.batch_size,
        disk_warn_bytes=int(settings.storage.backlog_disk_warn_mb * 1024 * 1024),
    )


async def run_platform(
    settings: Settings,
    *,
    demo: bool = False,
    duration_s: float | None = None,
    stop: asyncio.Event | None = None,
    registry: Registry | None = None,
) -> GatewayStats:
    """Run until ``stop`` is set (Ctrl-C, SIGTERM) or ``duration_s`` passes; the gateway drains first, then
    everything else stops, the managed broker last. Returns the gateway's counters."""
    registry = registry or load_registry(settings.registry)
    clock = SystemClock()
    gateway = build_gateway(settings, registry, clock)
    drain = build_drain(settings, registry, clock)
    drain_stop = asyncio.Event()
    stop = stop or asyncio.Event()
    if settings.gateway.metrics_port is not None:
        port = serve_metrics(
            gateway.stats,
            gateway.spool,
            settings.gateway.client_id,
            port=settings.gateway.metrics_port,
            bind=settings.gateway.metrics_bind,
        )
        log.info("metrics.serving", url=f"http://{settings.gateway.metrics_bind}:{port}/metrics")
    async with broker_for(settings) as address:
        gateway_task = asyncio.create_task(run_gateway(gateway, gateway_link_options(settings, address)))
        helpers = [asyncio.create_task(_report_stats(settings.gateway.client_id, gateway.stats, drain))]
        drain_task = asyncio.create_task(drain.run(drain_stop))
        fleet: list[asyncio.Task[None]] = []
        fleet_stop = asyncio.Event()
        try:
            if demo:
                # Devices start once the gateway listens, so the demo's first messages are not missed.
                await _first([gateway_task, asyncio.create_task(gateway.subscribed.wait())], timeout_s=30)
                helpers.append(asyncio.create_task(_watch_dead_letters(address)))
                options = DemoOptions(host=address.host, port=address.port)
                fleet.append(asyncio.create_task(run_fleet(registry, options, clock, fleet_stop)))
            waiter = asyncio.create_task(stop.wait())
            done = await _first([gateway_task, drain_task, waiter, *helpers, *fleet], timeout_s=duration_s)
            waiter.cancel()
            for task in done - {waiter}:
                task.result()  # a part that ended by itself failed: say so rather than end quietly
                raise RuntimeError(f"{task.get_coro()} ended by itself")
            # Stopping is cooperative (events, not only cancel): on Python 3.11 asyncio.wait_for, used inside
            # aiomqtt, can swallow a cancellation. Devices first, so that the gateway drains what they sent last.
            fleet_stop.set()
            if fleet:
                await asyncio.wait(fleet, timeout=STOP_TIMEOUT_S)
            gateway.request_stop()
            await asyncio.wait([gateway_task], timeout=DRAIN_TIMEOUT_S)
            drain_stop.set()  # after the gateway, so that the store gets its last records too
            await asyncio.wait([drain_task], timeout=DRAIN_TIMEOUT_S)
        finally:
            drain_stop.set()
            leftovers = [task for task in [gateway_task, drain_task, *helpers, *fleet] if not task.done()]
            for task in leftovers:
                task.cancel()
            if leftovers:
                await asyncio.wait(leftovers, timeout=STOP_TIMEOUT_S)
            gateway.spool.close()
            drain.spool.close()
            drain.writer.close()
            log.info("gateway.stats", final=True, **gateway.stats.snapshot())
            log.info("storage.stats", final=True, **drain.stats.snapshot())
    return gateway.stats


async def _first(tasks: list[asyncio.Task[Any]], timeout_s: float | None) -> set[asyncio.Task[Any]]:
    done, _ = await asyncio.wait(tasks, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    return done
