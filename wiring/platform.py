"""The running platform: gateway, storage drain and rules engine made by the builder (``wiring.build``), the
loops around them, and the order in which everything starts and stops. Devices (the demo's, a simulated city)
are attached by whoever runs the platform, so that this layer knows nothing of simulators."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from console.context import Console
from console.feed import AlertFeed
from console.live import LiveTests
from console.web.app import create_app
from console.web.server import ConsoleServer
from devices.registry import Registry, load_registry, rules_account
from gateway.metrics import serve_metrics
from gateway.runner import run_gateway
from mqtt.link_options import LinkOptions
from rules.config import RulesConfig, load_rules
from rules.metrics import RulesCollector
from rules.webhooks import Webhooks
from runtime.clock import Clock, SystemClock
from runtime.tuning import tune_for_ingest
from wiring import loops
from wiring.broker import BrokerAddress, broker_for, gateway_link_options
from wiring.build import build_drain, build_gateway, build_rules, owned_registry, spool_path
from wiring.console import build_console, build_digests
from wiring.rules_thread import RulesThread
from wiring.settings import Settings
from wiring.video import VideoCollector, VideoEvidence, VideoPlant

log = structlog.get_logger("shian")

DRAIN_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0

#: Runs devices against the platform until the event is set (see :func:`run_platform`).
Devices = Callable[["Platform", BrokerAddress, asyncio.Event], Awaitable[None]]


class Platform:
    """The running parts and the order in which they start and stop."""

    def __init__(
        self, settings: Settings, registry: Registry, clock: Clock, *, rules_config: RulesConfig | None = None
    ) -> None:
        registry = owned_registry(settings, registry)
        self.settings = settings
        self.registry = registry
        self.clock = clock
        self.gateway = build_gateway(settings, registry, clock)
        rules_config = rules_config or load_rules(settings.rules.file, registry.region)
        self.drain = build_drain(settings, registry, clock, config=rules_config)
        self.feed = AlertFeed()
        #: The bright kitchen's picture (None: ``[video]`` is off).
        self.video = VideoPlant(settings, registry, clock) if settings.video.mode != "off" else None
        evidence = [VideoEvidence(self.video)] if self.video is not None else []
        self.rules, self.alerts_topic = build_rules(
            settings,
            registry,
            clock,
            config=rules_config,
            also_notify=[self.feed, *evidence],
            pictures=self.video.board.state if self.video is not None else None,
        )
        #: The rules engine runs on its own loop in its own thread (wiring/rules_thread.py).
        self.rules_thread = RulesThread(self.rules)
        self.console: Console | None = None
        self.console_server: ConsoleServer | None = None
        self.console_task: asyncio.Future[None] | None = None
        if settings.web.enabled:
            self.console = build_console(
                settings,
                registry,
                clock,
                self.feed,
                manual_intake=self.gateway.submit_manual,
                limits=self.rules.engine.config,
            )
            self.console.wake_rules = self.gateway.committed.set  # forwarded to the rules thread
            self.console.live = LiveTests(spool_path(settings), registry, clock, judge=self.drain.judge)
            if self.video is not None:
                self.console.video = self.video.make_access(
                    store=self.console.store,
                    passwords=self.console.passwords,
                    clock=clock,
                    limits=self.rules.engine.config,
                    secret_key=self.console.secret_key,
                )
        self.drain.on_backlog_disk = self._backlog_disk
        self.drain_stop, self.rules_stop, self.devices_stop = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self.core: list[asyncio.Task[None]] = []  # gateway, storage drain, rules: must never end by themselves
        self.helpers: list[asyncio.Task[Any]] = []  # run until cancelled
        self.devices: list[asyncio.Task[None]] = []
        self.devices_stop_timeout_s = STOP_TIMEOUT_S

    def _backlog_disk(self, high: bool, backlog_bytes: int) -> None:
        """The storage drain's disk alarm, raised and resolved as a platform alert through the rules engine."""
        engine, now = self.rules.engine, self.clock.now()
        if high:
            megabytes = round(backlog_bytes / 2**20, 1)
            threshold = self.settings.storage.backlog_disk_warn_mb
            evidence = {"backlog_bytes": backlog_bytes}
            engine.report("storage.backlog_disk", "warning", now, evidence, megabytes=megabytes, threshold=threshold)
        else:
            engine.clear("storage.backlog_disk", "the backlog drained", now, by="storage")

    def serve_metrics(self) -> None:
        g = self.settings.gateway
        if g.metrics_port is not None:
            port = serve_metrics(
                self.gateway.stats,
                self.gateway.spool,
                g.client_id,
                port=g.metrics_port,
                bind=g.metrics_bind,
                also=[
                    RulesCollector(self.rules.stats, g.client_id),
                    *([VideoCollector(self.video)] if self.video is not None else []),
                ],
            )
            log.info("metrics.serving", url=f"http://{g.metrics_bind}:{port}/metrics")

    def serve_console(self) -> None:
        """Bind the console's port (a taken one fails here, at start-up) and serve it until the platform closes."""
        if self.console is not None:
            web = self.settings.web
            self.console_server = ConsoleServer(create_app(self.console), web.bind, web.port)
            self.console_task = asyncio.ensure_future(self.console_server.serve())
            self.helpers.append(self.console_task)
            if self.settings.digest.enabled:
                digests = build_digests(self.console, self.settings, lambda: self.alerts_topic.bus)
                self.helpers.append(asyncio.ensure_future(digests.run(asyncio.Event())))  # cancelled at close
            if self.console.live is not None:
                self.helpers.append(asyncio.ensure_future(self.console.live.run(asyncio.Event())))  # cancelled at close
            log.info("console.serving", url=self.settings.web.public_url or self.console_server.url)

    def link_options(self, address: BrokerAddress, *, rules: bool = False) -> LinkOptions:
        """The gateway's connection options; with ``rules``, the rules engine's: its own client id and, on a
        broker with accounts, its own account (``rules_account``), so that no broker rule gives the two
        connections one client id."""
        options = gateway_link_options(self.settings, address)
        if not rules:
            return options
        username = rules_account(options.username) if options.username else None
        return dataclasses.replace(options, client_id=rules_account(options.client_id), username=username)

    def start(self, address: BrokerAddress) -> None:
        webhooks = [n for n in self.rules.notifiers if isinstance(n, Webhooks)]
        self.rules_thread.adopt_notifiers(asyncio.get_running_loop())
        self.core = [
            asyncio.create_task(run_gateway(self.gateway, self.link_options(address))),
            asyncio.create_task(self.drain.run(self.drain_stop)),
            asyncio.create_task(self.rules_thread.run()),
        ]
        self.helpers += [
            asyncio.create_task(
                loops.report_stats(self.settings.gateway.client_id, self.gateway.stats, self.drain, self.rules.stats)
            ),
            asyncio.create_task(
                loops.rules_link(self.rules, self.alerts_topic, self.link_options(address, rules=True))
            ),
            asyncio.create_task(loops.prune_spool(self.gateway.spool, self.clock)),
            asyncio.create_task(loops.forward_wakes(self.gateway.committed, self.rules_thread.wake)),
            *(asyncio.create_task(hooks.deliver_forever()) for hooks in webhooks),
        ]

    async def start_video(self) -> None:
        """The media server and its monitor, once the console listens (the server's hooks ask the console)."""
        if self.video is not None and self.console_server is not None:
            server = self.console_server
            wildcard = server.host in ("0.0.0.0", "::", "")
            await self.video.start(f"http://127.0.0.1:{server.port}" if wildcard else server.url)

    async def gateway_ready(self, timeout_s: float = 30.0) -> None:
        """Once the gateway has subscribed (or has failed, which :meth:`wait` then reports)."""
        await _first([self.core[0], asyncio.create_task(self.gateway.subscribed.wait())], timeout_s=timeout_s)

    def attach(self, devices: Awaitable[None]) -> None:
        """Devices that run until :attr:`devices_stop` is set; they are stopped first, so the gateway drains
        what they sent last."""
        self.devices.append(asyncio.ensure_future(devices))

    def add_helper(self, helper: Awaitable[Any]) -> None:
        """A loop that runs until the platform closes."""
        self.helpers.append(asyncio.ensure_future(helper))

    async def wait(self, stop: asyncio.Event, duration_s: float | None) -> None:
        waiter = asyncio.create_task(stop.wait())
        done = await _first([*self.core, waiter, *self.helpers, *self.devices], timeout_s=duration_s)
        waiter.cancel()
        for task in done - {waiter}:
            task.result()  # a part that ended by itself failed: say so rather than end quietly
            raise RuntimeError(f"{task.get_coro()} ended by itself")

    async def shutdown(self) -> None:
        """Devices first, so that the gateway drains what they sent last; then storage and rules take the
        last records. Stopping is cooperative (events, not only cancel): on Python 3.11 asyncio.wait_for,
        used inside aiomqtt, can swallow a cancellation."""
        gateway_task, drain_task, rules_task = self.core
        self.devices_stop.set()
        if self.devices:
            await asyncio.wait(self.devices, timeout=self.devices_stop_timeout_s)
        self.gateway.request_stop()
        await asyncio.wait([gateway_task], timeout=DRAIN_TIMEOUT_S)
        self.drain_stop.set()
        self.rules_stop.set()
        self.rules_thread.stop()
        await asyncio.wait([drain_task, rules_task], timeout=DRAIN_TIMEOUT_S)
        await self.rules.step()

    async def close(self) -> None:
        self.rules_thread.stop()
        if self.console_server is not None and self.console_task is not None:
            self.console_server.request_stop()  # event streams get a moment to end, then are cancelled
            await asyncio.wait([self.console_task], timeout=STOP_TIMEOUT_S)
        self.devices_stop.set()
        self.drain_stop.set()
        self.rules_stop.set()
        leftovers = [task for task in [*self.core, *self.helpers, *self.devices] if not task.done()]
        for task in leftovers:
            task.cancel()
        if leftovers:
            await asyncio.wait(leftovers, timeout=STOP_TIMEOUT_S)
        self.gateway.spool.close()
        self.drain.spool.close()
        self.drain.writer.close()
        await self.rules.close()
        if self.video is not None:
            await self.video.stop()
        if self.console is not None:
            self.console.close()
        log.info("gateway.stats", final=True, **self.gateway.stats.snapshot())
        log.info("storage.stats", final=True, **self.drain.stats.snapshot())


async def run_platform(
    settings: Settings,
    *,
    devices: Devices | None = None,
    duration_s: float | None = None,
    stop: asyncio.Event | None = None,
    registry: Registry | None = None,
    clock: Clock | None = None,
) -> Platform:
    """Run until ``stop`` is set (Ctrl-C, SIGTERM) or ``duration_s`` passes; the gateway drains first, then
    everything else stops, the managed broker last. ``devices`` runs once the gateway listens (so their first
    messages are not missed), until the platform tells it to stop. Returns the stopped platform, for its
    counters."""
    platform = Platform(settings, registry or load_registry(settings.registry), clock or SystemClock())
    tune_for_ingest()
    platform.serve_metrics()
    platform.serve_console()
    await platform.start_video()
    async with broker_for(settings) as address:
        platform.start(address)
        try:
            if devices is not None:
                await platform.gateway_ready()
                platform.attach(devices(platform, address, platform.devices_stop))
            await platform.wait(stop or asyncio.Event(), duration_s)
            await platform.shutdown()
        finally:
            await platform.close()
    return platform


async def _first(tasks: list[asyncio.Task[Any]], timeout_s: float | None) -> set[asyncio.Task[Any]]:
    done, _ = await asyncio.wait(tasks, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    return done
