"""A whole city's fleet against the platform, on one simulated clock: deadlines fire on simulated time."""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import structlog

from devices.registry import Registry
from simulators.fleet import FleetStats, run_fleet
from simulators.simclock import SimClock
from wiring.broker import BrokerAddress
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
) -> FleetStats:
    """Every device of ``registry`` against the platform, the simulated clock starting at ``start`` and running
    ``speed`` times as fast as the real one. Returns the fleet's counters."""
    stats = FleetStats()

    async def fleet(platform: Platform, address: BrokerAddress, fleet_stop: asyncio.Event) -> None:
        platform.devices_stop_timeout_s = FLEET_STOP_TIMEOUT_S
        platform.add_helper(_fleet_view(stats, platform))
        await run_fleet(
            registry,
            platform.clock,
            host=address.host,
            port=address.port,
            speed=speed,
            stop=fleet_stop,
            stats=stats,
            passwords=passwords,
        )

    clock = SimClock(start, speed)
    await run_platform(settings, devices=fleet, duration_s=duration_s, stop=stop, registry=registry, clock=clock)
    return stats


async def _fleet_view(stats: FleetStats, platform: Platform, every_s: float = 2.0) -> None:
    """The live view of a simulation: one line every few seconds."""
    last, last_at = stats.published, asyncio.get_running_loop().time()
    tz = ZoneInfo(platform.registry.timezone)
    while True:
        await asyncio.sleep(every_s)
        now = asyncio.get_running_loop().time()
        rate = (stats.published - last) / (now - last_at)
        last, last_at = stats.published, now
        store = platform.rules.engine.store
        log.info(
            "fleet.view",
            sim_time=f"{platform.clock.now().astimezone(tz):%m-%d %H:%M}",
            msgs_per_s=round(rate),
            devices_online=stats.online,
            receipts_pending=stats.pending,
            stored=platform.gateway.stats.stored,
            rejected=sum(platform.gateway.stats.rejected.values()),
            alerts_open=store.count("open"),  # counted exactly, however many
            critical=store.count("open", "critical"),
        )
