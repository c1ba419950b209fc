"""Wire the parts together for ``shian run`` and ``shian demo``: broker, gateway and, for the demo, devices."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from broker_config.managed import ManagedMosquitto
from devices.messages import DeadLetter
from devices.registry import Registry, load_registry
from devices.topics import ALERTS_SUBSCRIPTION, DEADLETTER_SUBSCRIPTION
from gateway.bus import BusError
from gateway.entries import SkewLimits
from gateway.link_options import LinkOptions
from gateway.metrics import serve_metrics
from gateway.mqtt_link import MqttLink
from gateway.runner import run_gateway
from gateway.service import Gateway
from gateway.service_link import ServiceLink
from gateway.spool import Spool
from gateway.stats import GatewayStats
from rules.alerts import RulesStore
from rules.config import load_rules
from rules.engine import RulesEngine
from rules.messages import render
from rules.notify import MqttAlerts, Notifier, StoredAlerts, Webhook
from rules.runner import RulesRunner
from shian.clock import Clock, SystemClock
from shian.config import ConfigError, Settings
from shian.tuning import tune_for_ingest
from simulators.demo import DemoOptions, run_demo_fleet
from simulators.fleet import FleetStats, run_fleet
from simulators.simclock import SimClock
from storage.drain import StorageDrain
from storage.local import LocalStore
from storage.schema import gateway_point
from storage.writers import InfluxV1Writer, InfluxV2Writer, PointWriter, WriteError

log = structlog.get_logger("shian")

STATS_EVERY_S = 5.0
DRAIN_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
PRUNE_EVERY_S = 600.0
#: The canteen id of alerts about the platform itself (read by the city account, which reads every alert).
PLATFORM = "platform"


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


async def _watch_operator_topics(address: BrokerAddress) -> None:
    """What an operator and a supervisor would see: dead letters and alerts."""
    options = LinkOptions(host=address.host, port=address.port, client_id="shian-demo-watch")
    async with MqttLink(options) as link:
        await link.subscribe([DEADLETTER_SUBSCRIPTION, ALERTS_SUBSCRIPTION])
        async for incoming in link.messages():
            if not incoming.payload:
                continue  # a cleared retained alert
            if incoming.topic.startswith(DEADLETTER_SUBSCRIPTION[:-1]):
                letter = DeadLetter.model_validate_json(incoming.payload, strict=False)
                log.warning(
                    "deadletter.received",
                    reason=letter.reason,
                    detail=letter.detail,
                    client_id=letter.client_id,
                    topic=letter.topic,
                )
            else:
                alert = json.loads(incoming.payload)
                log.warning(
                    "alert.received",
                    rule=alert.get("rule"),
                    severity=alert.get("severity"),
                    state=alert.get("state"),
                    message=alert.get("message"),
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
        receive_maximum=settings.gateway.receive_maximum,
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


def rules_store_path(settings: Settings) -> Path:
    return settings.data_dir / f"rules-{settings.gateway.client_id}.sqlite"


def build_rules(settings: Settings, registry: Registry, clock: Clock) -> tuple[RulesRunner, MqttAlerts]:
    config = load_rules(settings.rules.file, registry.region)
    engine = RulesEngine(registry, config, RulesStore(rules_store_path(settings)), clock)
    mqtt_alerts = MqttAlerts(None)
    notifiers: list[Notifier] = [mqtt_alerts, StoredAlerts(build_writer(settings), registry)]
    notifiers += [Webhook(hook.url, hook.format) for hook in settings.rules.webhooks]
    return RulesRunner(engine, Spool(spool_path(settings)), notifiers, tick_s=settings.rules.tick_s), mqtt_alerts


async def _rules_link(runner: RulesRunner, mqtt_alerts: MqttAlerts, options: LinkOptions) -> None:
    """The rules engine's own connection: publishes alerts, takes acknowledgements; reconnects."""
    backoff = 0.5
    while True:
        try:
            async with ServiceLink(options) as link:
                mqtt_alerts.bus = link
                backoff = 0.5
                await runner.take_acknowledgements(link)
        except BusError as exc:
            mqtt_alerts.bus = None
            log.warning("rules.disconnected", error=str(exc), retry_in_s=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)


class Platform:
    """The running parts and the order in which they start and stop."""

    def __init__(self, settings: Settings, registry: Registry, clock: Clock) -> None:
        self.settings = settings
        self.registry = registry
        self.clock = clock
        self.gateway = build_gateway(settings, registry, clock)
        self.drain = build_drain(settings, registry, clock)
        self.rules, self.mqtt_alerts = build_rules(settings, registry, clock)
        self.rules.wake = self.gateway.committed
        self.drain.on_backlog_disk = self._backlog_disk
        self.drain_stop, self.rules_stop, self.fleet_stop = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self.core: list[asyncio.Task[None]] = []  # gateway, storage drain, rules: must never end by themselves
        self.helpers: list[asyncio.Task[None]] = []  # run until cancelled
        self.fleet: list[asyncio.Task[None]] = []

    def _backlog_disk(self, high: bool, backlog_bytes: int) -> None:
        """The storage drain's disk alarm, raised and resolved as a platform alert (canteen id ``platform``)."""
        store, now, key = self.rules.engine.store, self.clock.now(), "storage.backlog_disk|platform"
        if high:
            threshold = self.settings.storage.backlog_disk_warn_mb
            message = render(
                "storage.backlog_disk",
                self.rules.engine.config.language,
                megabytes=round(backlog_bytes / 2**20, 1),
                threshold=threshold,
            )
            store.raise_alert(
                dedup_key=key,
                rule="storage.backlog_disk",
                severity="warning",
                canteen_id=PLATFORM,
                message=message,
                evidence={"backlog_bytes": backlog_bytes},
                at=now,
            )
        elif (alert := store.open_for(key)) is not None:
            store.resolve(alert.alert_id, "storage", "the backlog drained", now)

    async def _prune(self) -> None:
        """Forget dedup keys past the window and records every consumer has passed, every few minutes."""
        while True:
            await asyncio.sleep(PRUNE_EVERY_S)
            keys, records = await asyncio.to_thread(self.gateway.spool.prune, self.clock.now())
            log.info("spool.pruned", dedup_keys=keys, records=records)

    def serve_metrics(self) -> None:
        g = self.settings.gateway
        if g.metrics_port is not None:
            port = serve_metrics(
                self.gateway.stats, self.gateway.spool, g.client_id, port=g.metrics_port, bind=g.metrics_bind
            )
            log.info("metrics.serving", url=f"http://{g.metrics_bind}:{port}/metrics")

    def start(self, address: BrokerAddress) -> None:
        options = gateway_link_options(self.settings, address)
        self.core = [
            asyncio.create_task(run_gateway(self.gateway, options)),
            asyncio.create_task(self.drain.run(self.drain_stop)),
            asyncio.create_task(self.rules.run(self.rules_stop)),
        ]
        rules_options = dataclasses.replace(options, client_id=f"{options.client_id}-rules")
        self.helpers = [
            asyncio.create_task(_report_stats(self.settings.gateway.client_id, self.gateway.stats, self.drain)),
            asyncio.create_task(_rules_link(self.rules, self.mqtt_alerts, rules_options)),
            asyncio.create_task(self._prune()),
        ]

    async def start_demo(self, address: BrokerAddress) -> None:
        # Devices start once the gateway listens, so the demo's first messages are not missed.
        await _first([self.core[0], asyncio.create_task(self.gateway.subscribed.wait())], timeout_s=30)
        self.helpers.append(asyncio.create_task(_watch_operator_topics(address)))
        options = DemoOptions(host=address.host, port=address.port)
        self.fleet.append(asyncio.create_task(run_demo_fleet(self.registry, options, self.clock, self.fleet_stop)))

    async def wait(self, stop: asyncio.Event, duration_s: float | None) -> None:
        waiter = asyncio.create_task(stop.wait())
        done = await _first([*self.core, waiter, *self.helpers, *self.fleet], timeout_s=duration_s)
        waiter.cancel()
        for task in done - {waiter}:
            task.result()  # a part that ended by itself failed: say so rather than end quietly
            raise RuntimeError(f"{task.get_coro()} ended by itself")

    async def shutdown(self) -> None:
        """Devices first, so that the gateway drains what they sent last; then storage and rules take the
        last records. Stopping is cooperative (events, not only cancel): on Python 3.11 asyncio.wait_for,
        used inside aiomqtt, can swallow a cancellation."""
        gateway_task, drain_task, rules_task = self.core
        self.fleet_stop.set()
        if self.fleet:
            await asyncio.wait(self.fleet, timeout=STOP_TIMEOUT_S)
        self.gateway.request_stop()
        await asyncio.wait([gateway_task], timeout=DRAIN_TIMEOUT_S)
        self.drain_stop.set()
        self.rules_stop.set()
        await asyncio.wait([drain_task, rules_task], timeout=DRAIN_TIMEOUT_S)
        await self.rules.step()

    async def close(self) -> None:
        self.drain_stop.set()
        self.rules_stop.set()
        leftovers = [task for task in [*self.core, *self.helpers, *self.fleet] if not task.done()]
        for task in leftovers:
            task.cancel()
        if leftovers:
            await asyncio.wait(leftovers, timeout=STOP_TIMEOUT_S)
        self.gateway.spool.close()
        self.drain.spool.close()
        self.drain.writer.close()
        self.rules.spool.close()
        self.rules.engine.store.close()
        log.info("gateway.stats", final=True, **self.gateway.stats.snapshot())
        log.info("storage.stats", final=True, **self.drain.stats.snapshot())


async def _fleet_view(stats: FleetStats, platform: Platform, every_s: float = 2.0) -> None:
    """The live view of a simulation: one line every few seconds."""
    last, last_at = stats.published, asyncio.get_running_loop().time()
    while True:
        await asyncio.sleep(every_s)
        now = asyncio.get_running_loop().time()
        rate = (stats.published - last) / (now - last_at)
        last, last_at = stats.published, now
        alerts = platform.rules.engine.store.alerts(state="open")
        log.info(
            "fleet.view",
            sim_time=f"{platform.clock.now().astimezone(ZoneInfo(platform.registry.timezone)):%m-%d %H:%M}",
            msgs_per_s=round(rate),
            devices_online=stats.online,
            receipts_pending=stats.pending,
            stored=platform.gateway.stats.stored,
            rejected=sum(platform.gateway.stats.rejected.values()),
            alerts_open=len(alerts),
            critical=sum(a.severity == "critical" for a in alerts),
        )


async def run_simulation(
    settings: Settings,
    registry: Registry,
    *,
    start: dt.datetime,
    speed: float,
    duration_s: float | None,
    stop: asyncio.Event | None = None,
    passwords: dict[str, str] | None = None,
) -> FleetStats:
    """The platform and a whole fleet on one simulated clock: deadlines fire on simulated time."""
    clock = SimClock(start, speed)
    platform = Platform(settings, registry, clock)
    stats, fleet_stop = FleetStats(), asyncio.Event()
    async with broker_for(settings) as address:
        platform.start(address)
        fleet = asyncio.create_task(
            run_fleet(
                registry,
                clock,
                host=address.host,
                port=address.port,
                speed=speed,
                stop=fleet_stop,
                stats=stats,
                passwords=passwords,
            )
        )
        platform.helpers.append(asyncio.create_task(_fleet_view(stats, platform)))
        try:
            await platform.wait(stop or asyncio.Event(), duration_s)
            fleet_stop.set()
            await asyncio.wait([fleet], timeout=STOP_TIMEOUT_S * 2)
            await platform.shutdown()
        finally:
            fleet_stop.set()
            fleet.cancel()
            await platform.close()
    return stats


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
    platform = Platform(settings, registry or load_registry(settings.registry), SystemClock())
    tune_for_ingest()
    platform.serve_metrics()
    async with broker_for(settings) as address:
        platform.start(address)
        try:
            if demo:
                await platform.start_demo(address)
            await platform.wait(stop or asyncio.Event(), duration_s)
            await platform.shutdown()
        finally:
            await platform.close()
    return platform.gateway.stats


async def _first(tasks: list[asyncio.Task[Any]], timeout_s: float | None) -> set[asyncio.Task[Any]]:
    done, _ = await asyncio.wait(tasks, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    return done
