"""``shian simulate``: a whole city's fleet against the platform, the reference city's registry, or load mode."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from shian.commands.common import CommandError, Commands, add_common, settings_from

if TYPE_CHECKING:
    from devices.registry import Registry
    from simulators.behaviour import FleetStats
    from wiring.settings import Settings


#: A school day's morning in the reference city.
DEFAULT_START = dt.datetime(2026, 11, 25, 6, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def add(commands: Commands) -> None:
    simulate = commands.add_parser(
        "simulate",
        help="run a whole city's fleet against the platform, or generate the reference city's registry",
        description="Run every device of a registry, each on its own connection, against the platform (managed "
        "broker unless mqtt.host is set), on a simulated clock shared with the rules engine. Without --registry "
        "the registry is the generated reference city (456 school canteens and 3 suppliers, about 5,000 devices), "
        "not the demo's. A line every two seconds shows messages per second, devices online, receipts pending and "
        "open alerts. Ctrl-C stops.",
    )
    add_common(simulate, registry="the registry whose devices to run (default: the generated reference city)")
    simulate.add_argument(
        "--generate-registry", type=Path, metavar="FILE", help="only write the reference city's registry to FILE"
    )
    simulate.add_argument("--seed", type=int, default=2026, help="of the reference city and its behaviour")
    simulate.add_argument(
        "--cities",
        type=_city_count,
        metavar="N",
        help="a generated province of N cities (2-11; 11: about 5,000 canteens and 54,000 devices) instead of "
        "the reference city, for --generate-registry and for the run",
    )
    simulate.add_argument(
        "--multiplex",
        type=int,
        metavar="CONNECTIONS",
        help="the devices share this many connections instead of one each (open development broker only: no "
        "ACL, no last wills); for a province, or a city faster than its connections allow",
    )
    simulate.add_argument(
        "--fleet-processes",
        type=int,
        default=0,
        metavar="N",
        help="run the devices (each on its own connection) in N processes of their own instead of in the "
        "platform's (default 0: in the platform's); see docs/simulators.md",
    )
    simulate.add_argument("--canteens", type=int, help="only the first N canteens of the registry")
    simulate.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second (default 60)")
    simulate.add_argument(
        "--start",
        type=dt.datetime.fromisoformat,
        metavar="ISO",
        help="simulated start (default 2026-11-25T06:30:00+08:00, a school day); with --fleet-only the devices' "
        "clock, which then runs in real time (default: now; at most a day back, the gateway's skew limit)",
    )
    simulate.add_argument("--duration", type=float, metavar="SECONDS", help="stop by itself after this long")
    simulate.add_argument(
        "--credentials",
        type=Path,
        metavar="FILE",
        help="credentials.yaml from 'shian broker provision': each device logs in with its password",
    )
    simulate.add_argument(
        "--load",
        type=int,
        metavar="MESSAGES",
        help="load mode: publish this many readings over a few connections as fast as the broker "
        "takes them, and print the rate as a ratio to mosquitto_pub in the same run",
    )
    simulate.add_argument("--connections", type=int, default=4, help="connections of the load mode (default 4)")
    simulate.add_argument(
        "--fleet-only",
        action="store_true",
        help="run only the devices, in real time, against the broker mqtt.host names, where platforms already "
        "run (e.g. one 'shian run' per gateway.partition), over TLS when mqtt.tls_ca names the broker's CA; see "
        "docs/scaling.md",
    )
    simulate.add_argument(
        "--video-share",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="this share of the city's cameras push a generated picture to a managed media server (0.01: one in a "
        "hundred; each is an ffmpeg process, about 1 %% of a core), which the platform starts when [video] is off "
        "(docs/video.md)",
    )
    simulate.add_argument(
        "--history",
        metavar="YYYY-MM",
        help="write a month of history instead of running live: every device's records of that month, stepped on "
        "a virtual clock through the gateway's spool, storage and the rules engine, with simulated supervisors "
        "handling the alerts (no broker; minutes for the reference city). Into an empty --data-dir of its own; "
        "periodic telemetry is thinned (docs/simulators.md)",
    )
    simulate.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    import yaml

    from runtime.logs import configure_logging
    from simulators.city_run import run_simulation

    if args.generate_registry:
        return _generate_registry(_generated(args), args.generate_registry)
    settings = settings_from(args)
    # a month of history raises thousands of alerts: their lines would bury the progress
    mute = ("alert.raised", "alert.resolved", "alert.escalated", "alert.reminded") if args.history else ()
    configure_logging(settings.log_format, settings.log_level, mute=mute)
    if args.load:
        return _load_mode(args, settings)
    registry = _city(args)
    if args.video_share and settings.video.mode == "off":
        settings = settings.model_copy(update={"video": settings.video.model_copy(update={"mode": "managed"})})
    if args.history:
        return _history(args.history, settings, registry, args.seed)
    if args.fleet_processes < 0 or (args.fleet_processes and args.multiplex):
        raise CommandError(
            "--fleet-processes: a number of processes (0 or more), for devices on their own connections"
            " (not with --multiplex)"
        )
    passwords = yaml.safe_load(args.credentials.read_text(encoding="utf-8")) if args.credentials else None
    if args.fleet_only:
        return _fleet_only(args, settings, registry, passwords)

    async def main() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        result = await run_simulation(
            settings,
            registry,
            start=args.start or DEFAULT_START,
            speed=args.speed,
            duration_s=args.duration,
            stop=stop,
            passwords=passwords,
            multiplex=args.multiplex,
            fleet_processes=args.fleet_processes,
        )
        _log_done(result.fleet, **result.summary)

    asyncio.run(main())
    return 0


def _fleet_only(
    args: argparse.Namespace, settings: Settings, registry: Registry, passwords: dict[str, str] | None
) -> int:

    from simulators.city_run import run_fleet_alone

    if settings.mqtt.host is None:
        raise CommandError("--fleet-only needs the platforms' broker: set mqtt.host (e.g. SHIAN_MQTT__HOST)")

    async def main() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        assert settings.mqtt.host is not None
        stats = await run_fleet_alone(
            registry,
            settings.mqtt.host,
            settings.mqtt.port or 1883,
            duration_s=args.duration,
            stop=stop,
            multiplex=args.multiplex,
            passwords=passwords,
            tls_ca=settings.mqtt.tls_ca,
            start=args.start,
            fleet_processes=args.fleet_processes,
            logs=(settings.log_format, settings.log_level),
        )
        _log_done(stats)

    asyncio.run(main())
    return 0


def _history(month: str, settings: Settings, registry: Registry, seed: int) -> int:
    import time

    import structlog
    import yaml

    from console.bulletin.periods import month_period
    from rules.store import RulesStore
    from simulators.history import History, HistoryResult
    from spool import Spool
    from wiring.build import build_writer, data_registry_path, rules_store_path, spool_path

    log = structlog.get_logger("shian")
    try:
        period = month_period(month, ZoneInfo(registry.timezone))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # the reports read the registry the history was made with from beside its data
    kept = yaml.safe_dump(registry.model_dump(mode="json", exclude_defaults=True), allow_unicode=True, sort_keys=False)
    data_registry_path(settings).write_text(kept, encoding="utf-8")
    writer = build_writer(settings)
    history = History(registry, Spool(spool_path(settings)), writer, RulesStore(rules_store_path(settings)), seed=seed)
    began = time.monotonic()

    def progress(day: dt.date, so_far: HistoryResult) -> None:
        log.info("history.day", day=day.isoformat(), records=so_far.records, elapsed_s=round(time.monotonic() - began))

    try:
        history.run(period.start, period.end, progress)  # a HistoryError is the command's one-line error
    finally:
        history.engine.close()
        writer.close()
    r = history.result
    log.info(
        "history.done",
        month=month,
        records=r.records,
        dead_lettered=r.rejected,
        alerts=r.alerts,
        acknowledged=r.acknowledged,
        resolved_by_supervisors=r.resolved,
        inspections=r.inspections,
        data_dir=str(settings.data_dir),
        elapsed_s=round(time.monotonic() - began),
    )
    return 0


def _log_done(stats: FleetStats, **summary: object) -> None:
    import structlog

    structlog.get_logger("shian").info(
        "fleet.done",
        published=stats.published,
        records=len(stats.produced),
        stored=stats.stored,
        duplicates=stats.duplicates,
        rejected=stats.rejected,
        receipts_pending=stats.pending,
        disconnects=stats.disconnects,
        **summary,
    )


def _city_count(text: str) -> int:
    if not text.isdigit() or not 2 <= int(text) <= 11:
        raise argparse.ArgumentTypeError(f"{text!r}: a province has 2 to 11 cities")
    return int(text)


def _generated(args: argparse.Namespace) -> dict[str, Any]:
    """The reference city, or with --cities a generated province, as registry data."""
    from simulators.city import generate_city, generate_province

    if args.cities is not None:
        return generate_province(args.seed, args.cities)
    return generate_city(args.seed)


def _generate_registry(data: dict[str, Any], path: Path) -> int:
    import yaml

    from devices.registry import Registry

    registry = Registry.model_validate(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    devices = sum(len(c.devices) for c in registry.canteens)
    print(f"wrote {path}: {len(registry.canteens)} canteens, {devices} devices")
    return 0


def _city(args: argparse.Namespace) -> Registry:
    """The registry given (checked, errors with file and line) or the reference city, cut to --canteens."""
    import yaml

    from devices.registry import Registry, load_registry

    if args.registry:
        load_registry(args.registry)
        data: dict[str, Any] = yaml.safe_load(args.registry.read_text(encoding="utf-8"))
    else:
        data = _generated(args)
    if args.video_share:
        from simulators.cameras import with_pictures

        data = with_pictures(data, args.video_share, args.seed)
    if args.canteens:
        data["canteens"] = data["canteens"][: args.canteens]
        keep = {c["id"] for c in data["canteens"]}
        districts = {c["district"] for c in data["canteens"]}
        data["accounts"] = [
            a
            for a in data.get("accounts", [])
            if a.get("canteen", next(iter(keep))) in keep and a.get("district", next(iter(districts))) in districts
        ]
    return Registry.model_validate(data)


def _load_mode(args: argparse.Namespace, settings: Settings) -> int:
    from devices.registry import Registry
    from simulators.city import generate_city
    from simulators.load import load_messages, mosquitto_pub_baseline, publish_load
    from wiring.broker import broker_for

    messages = load_messages(Registry.model_validate(generate_city(args.seed)), args.load)

    async def main() -> tuple[Any, Any]:
        async with broker_for(settings) as address:
            baseline = await asyncio.to_thread(mosquitto_pub_baseline, address.host, address.port, messages)
            load = await publish_load(address.host, address.port, messages, connections=args.connections)
            return baseline, load

    baseline, load = asyncio.run(main())
    print(
        f"mosquitto_pub -l: {baseline.rate:,.0f} msg/s; load mode ({args.connections} connections): "
        f"{load.rate:,.0f} msg/s; ratio {load.rate / baseline.rate:.2f}"
    )
    return 0
