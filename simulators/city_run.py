"""A whole city's fleet against the platform, on one simulated clock: deadlines fire on simulated time."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from devices.registry import Registry
from rules.alerts import AlertQuery, alerts_by_record
from rules.store import RulesStore
from runtime.logs import LogFormat
from simulators.behaviour import Behaviour, FleetStats
from simulators.cameras import chosen_cameras, pushers_for
from simulators.fleet import run_fleet
from simulators.fleet_processes import run_fleet_processes
from simulators.multiplex import run_multiplexed
from simulators.simclock import SimClock
from wiring.broker import BrokerAddress
from wiring.build import rules_store_path
from wiring.platform import Platform, run_platform
from wiring.settings import Settings

log = structlog.get_logger("shian")

#: A city's thousands of connections take longer to close than the demo's few.
FLEET_STOP_TIMEOUT_S = 10.0


async def run_simulation(
    settings: Settings,
    registry: Registry,
    *,
    start: dt.datetime,
    speed: float,
    duration_s: float | None,
    stop: asyncio.Event | None = None,
    passwords: dict[str, str] | None = None,
    multiplex: int | None = None,
    fleet_processes: int = 0,
    behaviour: Behaviour | None = None,
) -> SimulationResult:
    """Every device of ``registry`` against the platform, the simulated clock starting at ``start`` and running
    ``speed`` times as fast as the real one (slower while the fleet cannot keep up). Returns the fleet's counters
    and a summary of what the platform made of it. ``multiplex``: the devices share that many connections
    (simulators/multiplex.py) instead of one each; ``fleet_processes``: they run in that many processes of
    their own (simulators/fleet_processes.py), not in the platform's."""
    stats, samples = FleetStats(), LagSamples()

    async def fleet(platform: Platform, address: BrokerAddress, fleet_stop: asyncio.Event) -> None:
        platform.devices_stop_timeout_s = FLEET_STOP_TIMEOUT_S
        platform.add_helper(_fleet_view(stats, platform, clock, samples))
        if platform.video is not None:  # the cameras of the registry that push a picture (--video-share)
            for pusher in pushers_for(platform, chosen_cameras(registry, 1.0)):
                platform.attach(pusher.run(fleet_stop))
        await _devices(
            registry,
            clock,
            host=address.host,
            port=address.port,
            stop=fleet_stop,
            stats=stats,
            multiplex=multiplex,
            passwords=passwords,
            processes=fleet_processes,
            behaviour=behaviour,
            logs=(settings.log_format, settings.log_level),
        )

    clock = SimClock(start, speed, held=True)  # released by the fleet once it is connected
    await run_platform(settings, devices=fleet, duration_s=duration_s, stop=stop, registry=registry, clock=clock)
    return SimulationResult(stats, _summary(settings, stats, samples, clock))


def _devices(
    registry: Registry,
    clock: SimClock,
    *,
    host: str,
    port: int,
    stop: asyncio.Event,
    stats: FleetStats,
    multiplex: int | None,
    passwords: dict[str, str] | None,
    tls_ca: Path | None = None,
    processes: int = 0,
    behaviour: Behaviour | None = None,
    logs: tuple[LogFormat, str] = ("json", "info"),
) -> Coroutine[Any, Any, None]:
    """The fleet: over ``multiplex`` shared connections, or one connection per device (with its password, over
    TLS with ``tls_ca``), in this process or over ``processes`` of its own (logging as ``logs`` says)."""
    if multiplex:
        return run_multiplexed(
            registry, clock, host=host, port=port, stop=stop, stats=stats, connections=multiplex, behaviour=behaviour
        )
    if processes:
        return run_fleet_processes(
            registry,
            clock,
            processes=processes,
            host=host,
            port=port,
            stop=stop,
            stats=stats,
            behaviour=behaviour,
            passwords=passwords,
            tls_ca=tls_ca,
            log_format=logs[0],
            log_level=logs[1],
        )
    return run_fleet(
        registry,
        clock,
        host=host,
        port=port,
        stop=stop,
        stats=stats,
        behaviour=behaviour,
        passwords=passwords,
        tls_ca=tls_ca,
    )


@dataclass
class LagSamples:
    """The rules engine's lag, sampled with the status line: records behind, and wall seconds behind."""

    records: list[int] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)
    slowest_speed: float | None = None


@dataclass(frozen=True)
class SimulationResult:
    fleet: FleetStats
    summary: dict[str, object]


def _summary(settings: Settings, stats: FleetStats, samples: LagSamples, clock: SimClock) -> dict[str, object]:
    """What a run shows about the platform, read back from the rules store after it stopped: the lag, whether
    every failed test was alerted, and how many devices were called offline (none went silent on purpose)."""
    store = RulesStore(rules_store_path(settings))
    try:
        rules = ("test.failed", "device.offline", "canteen.offline", "platform.mass_offline")
        found = {rule: store.search(AlertQuery(rule=rule), limit=1_000_000)[0] for rule in rules}
        alerted = alerts_by_record(found["test.failed"], "test.failed")
        open_alerts = store.count("open")
    finally:
        store.close()
    return {
        "sim_end": clock.now().isoformat(timespec="seconds"),
        "speed_final": round(clock.speed, 1),
        "speed_slowest": round(samples.slowest_speed or clock.speed, 1),
        "lag_records_p50": _quantile(samples.records, 0.5),
        "lag_records_p99": _quantile(samples.records, 0.99),
        "lag_wall_s_p50": _quantile(samples.wall_s, 0.5),
        "lag_wall_s_p99": _quantile(samples.wall_s, 0.99),
        "failed_tests": len(stats.failed_tests),
        "failed_tests_alerted": len(stats.failed_tests & alerted.keys()),
        "device_offline_alerts": len(found["device.offline"]),
        "canteen_offline_alerts": len(found["canteen.offline"]),
        "mass_offline_alerts": len(found["platform.mass_offline"]),
        "alerts_open": open_alerts,
    }


def _quantile(values: list[float] | list[int], q: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 2) if ordered else None


async def _fleet_view(
    stats: FleetStats, platform: Platform, clock: SimClock, samples: LagSamples, every_s: float = 2.0
) -> None:
    """The live view of a simulation: one line every few seconds, and the lag sampled at the same time."""
    last, last_at = stats.published, asyncio.get_running_loop().time()
    tz = ZoneInfo(platform.registry.timezone)
    while True:
        await asyncio.sleep(every_s)
        now = asyncio.get_running_loop().time()
        rate = (stats.published - last) / (now - last_at)
        last, last_at = stats.published, now
        store, lag = platform.rules.engine.store, platform.rules.stats
        if not clock.held:
            samples.records.append(lag.lag_records)
            samples.wall_s.append(lag.lag_s / clock.speed)
            samples.slowest_speed = min(samples.slowest_speed or clock.speed, clock.speed)
        log.info(
            "fleet.view",
            sim_time=f"{clock.now().astimezone(tz):%m-%d %H:%M}",
            speed=round(clock.speed, 1),
            msgs_per_s=round(rate),
            devices_online=stats.online,
            receipts_pending=stats.pending,
            stored=platform.gateway.stats.stored,
            rejected=sum(platform.gateway.stats.rejected.values()),
            alerts_open=store.count("open"),  # counted exactly, however many
            critical=store.count("open", "critical"),
            rules_lag_records=lag.lag_records,
        )


async def run_fleet_alone(
    registry: Registry,
    host: str,
    port: int,
    *,
    duration_s: float | None,
    stop: asyncio.Event,
    multiplex: int | None = None,
    passwords: dict[str, str] | None = None,
    tls_ca: Path | None = None,
    start: dt.datetime | None = None,
    every_s: float = 5.0,
    fleet_processes: int = 0,
    logs: tuple[LogFormat, str] = ("json", "info"),
) -> FleetStats:
    """The fleet without a platform, against a broker that platforms (``shian run``, one per partition) serve:
    in real time, since those run on the system clock. ``start``: the devices' clock, if not now (a busy morning
    for a load test at night; the gateway takes records up to a day old). A line every ``every_s`` seconds."""
    stats, fleet_stop = FleetStats(), asyncio.Event()
    clock = SimClock(start or dt.datetime.now(dt.UTC), 1.0)
    fleet = _devices(
        registry,
        clock,
        host=host,
        port=port,
        stop=fleet_stop,
        stats=stats,
        multiplex=multiplex,
        passwords=passwords,
        tls_ca=tls_ca,
        processes=fleet_processes,
        logs=logs,
    )
    task = asyncio.ensure_future(fleet)
    loop, last, heard = asyncio.get_running_loop(), 0, 0
    deadline = None if duration_s is None else loop.time() + duration_s
    while not (stop.is_set() or task.done() or (deadline is not None and loop.time() >= deadline)):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
        log.info(
            "fleet.view",
            msgs_per_s=round((stats.published - last) / every_s),
            devices_online=stats.online,
            receipts_per_s=round((stats.receipts - heard) / every_s),
            receipts_pending=stats.pending,
            records=len(stats.produced),
        )
        last, heard = stats.published, stats.receipts
    fleet_stop.set()
    await asyncio.wait_for(task, FLEET_STOP_TIMEOUT_S * 3)
    return stats
