"""The ``shian`` command."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from gateway.spool import SpoolVersionError
from shian.config import ConfigError, Settings, load_settings
from shian.logs import configure_logging
from shian.process import ServerError

DESCRIPTION = """\
Shian (食安): supervision of school-canteen food safety over MQTT.

Devices (rapid-test detectors, sample-retention cabinets, bright-kitchen cameras) publish to an MQTT broker;
the gateway validates every message and dead-letters what is bad, with the reason.

Configuration comes from a TOML file (--config or $SHIAN_CONFIG) and SHIAN_* environment variables
(nested keys with '__', e.g. SHIAN_MQTT__HOST=broker.local); command-line flags win over both.
"""

EPILOG = """\
examples:
  shian demo                      managed broker + gateway + simulated devices of one canteen
  shian demo --duration 20        the same, stopping by itself after 20 seconds
  shian run --config shian.toml   the platform alone, against the configured broker
  shian registry check city.yaml  validate a canteen registry, naming file and line of every problem
  shian deadletter list --pending what the gateway refused and has not replayed
  shian query tests               rapid tests per canteen today, with pass rate (local store)
  shian deadletter replay --reason unknown_device   after adding the devices to the registry
"""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML configuration file (default: $SHIAN_CONFIG)")
    parser.add_argument("--registry", type=Path, metavar="FILE", help="canteen registry YAML (default: bundled demo)")
    parser.add_argument("--data-dir", type=Path, metavar="DIR", help="where the managed broker keeps its files")
    parser.add_argument(
        "--log-format", choices=["auto", "console", "json"], help="auto: console on a terminal, JSON otherwise"
    )
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shian", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the platform: broker (managed unless mqtt.host is set) and gateway",
        description="Run the gateway against the configured broker. With no mqtt.host configured, start a "
        "managed Mosquitto on loopback first and stop it on exit. Stop with Ctrl-C.",
    )
    _common(run)
    run.add_argument("--duration", type=float, metavar="SECONDS", help="stop by itself after this long")

    demo = commands.add_parser(
        "demo",
        help="run the platform with simulated devices of one canteen, one of them buggy",
        description="Everything 'run' does, plus simulated devices of the registry's first canteen: a detector, "
        "a sample cabinet and cameras, one of which sends malformed messages so that the dead-letter path shows. "
        "Stop with Ctrl-C.",
    )
    _common(demo)
    demo.add_argument("--duration", type=float, metavar="SECONDS", help="stop by itself after this long")

    registry = commands.add_parser("registry", help="work with canteen registry files")
    registry_commands = registry.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    check = registry_commands.add_parser(
        "check",
        help="validate registry files",
        description="Validate registry files; exit 1 naming the file and line of every problem.",
    )
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")

    _add_deadletter(commands)
    _add_query(commands)
    _add_broker(commands)
    _add_dashboards(commands)
    _add_alerts(commands)
    _add_scenarios(commands)
    _add_simulate(commands)
    return parser


def _add_deadletter(commands: Any) -> None:
    deadletter = commands.add_parser(
        "deadletter",
        help="inspect and replay the dead letters kept in the gateway's spool",
        description="Every message the gateway refused is kept in its spool with the reason, the topic, the "
        "client id and the raw payload. List and show them; after fixing the registry, replay them.",
    )
    dl_commands = deadletter.add_subparsers(dest="deadletter_command", required=True, metavar="ACTION")
    dl_list = dl_commands.add_parser("list", help="one line per dead letter, oldest first")
    _common(dl_list)
    dl_list.add_argument("--reason", help="only this reason (e.g. wrong_canteen)")
    dl_list.add_argument("--pending", action="store_true", help="only letters not yet replayed successfully")
    dl_list.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    dl_show = dl_commands.add_parser("show", help="one dead letter in full, payload included")
    _common(dl_show)
    dl_show.add_argument("id", type=int)
    dl_replay = dl_commands.add_parser(
        "replay",
        help="validate dead letters again with the current registry; store the ones that now pass",
        description="Validate dead letters again with the current registry. Those that pass are stored "
        "(deduplicated, with their original arrival time) and closed; the others stay, with a note.",
    )
    _common(dl_replay)
    which = dl_replay.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", type=int, nargs="*", default=[], metavar="ID", help="these letters")
    which.add_argument("--reason", help="every pending letter with this reason")
    which.add_argument("--all", action="store_true", help="every pending letter")


def _add_query(commands: Any) -> None:
    query = commands.add_parser(
        "query",
        help="answer simple questions from the embedded local store",
        description="Questions for the embedded local store (storage.backend = 'local'). With InfluxDB, ask "
        "InfluxQL or the Grafana boards instead.",
    )
    query_commands = query.add_subparsers(dest="query_command", required=True, metavar="QUESTION")
    tests_today = query_commands.add_parser("tests", help="rapid tests per canteen on a day, with pass rate")
    _common(tests_today)
    tests_today.add_argument("--date", type=_date, help="YYYY-MM-DD in the region's time zone (default: today)")
    temps = query_commands.add_parser("temperatures", help="the latest reading of every sample cabinet")
    _common(temps)
    alerts = query_commands.add_parser("alerts", help="open alerts")
    _common(alerts)


def _add_broker(commands: Any) -> None:
    broker = commands.add_parser("broker", help="Mosquitto configuration")
    broker_commands = broker.add_subparsers(dest="broker_command", required=True, metavar="ACTION")
    config = broker_commands.add_parser(
        "config",
        help="print the Mosquitto configuration the managed broker uses",
        description="Print the generated Mosquitto configuration (development listener on loopback).",
    )
    config.add_argument("--port", type=int, default=1883)
    config.add_argument("--persistence-dir", type=Path, default=Path("/var/lib/mosquitto"))
    prov = broker_commands.add_parser(
        "provision",
        help="generate the password file, ACL and production configuration from the registry",
        description="From the registry, write passwd (PBKDF2-SHA512 hashes), acl, mosquitto.conf (TLS listener, "
        "no anonymous access, username as client id) and credentials.yaml (clear-text passwords, mode 0600) into "
        "--out. Existing passwords are kept; new devices and accounts get generated ones. Apply with a reload "
        "(SIGHUP), which keeps connected clients connected.",
    )
    prov.add_argument("--registry", type=Path, required=True, metavar="FILE")
    prov.add_argument("--out", type=Path, required=True, metavar="DIR")
    prov.add_argument("--rotate", nargs="+", default=[], metavar="USERNAME", help="give these accounts new passwords")
    prov.add_argument("--port", type=int, default=8883, help="the fleet's listener (default 8883)")
    prov.add_argument("--bind", default="0.0.0.0", help="its address (default 0.0.0.0)")
    prov.add_argument("--loopback-port", type=int, help="also a plain listener on 127.0.0.1, for a local gateway")
    prov.add_argument("--tls-ca", type=Path, metavar="FILE", help="CA certificate (enables TLS with the next two)")
    prov.add_argument("--tls-cert", type=Path, metavar="FILE", help="the broker's certificate")
    prov.add_argument("--tls-key", type=Path, metavar="FILE", help="the broker's private key")
    prov.add_argument("--require-client-cert", action="store_true", help="demand client certificates too")
    prov.add_argument("--persistence-dir", type=Path, default=Path("/var/lib/mosquitto"))
    reload = broker_commands.add_parser(
        "reload", help="make a running Mosquitto read its password and ACL files again (SIGHUP)"
    )
    reload.add_argument("--pid", type=int, required=True, help="the broker's process id")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        args.config,
        registry=args.registry,
        data_dir=args.data_dir,
        log_format=args.log_format,
        log_level=args.log_level,
    )


def _run(args: argparse.Namespace, *, demo: bool) -> int:
    from shian.app import run_platform

    settings = _settings(args)
    configure_logging(settings.log_format, settings.log_level)

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        stop = asyncio.Event()

        def on_signal() -> None:
            # The first Ctrl-C or SIGTERM drains the gateway and stops everything, broker included;
            # a second one does not wait for the drain.
            if stop.is_set():
                task.cancel()
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, on_signal)
        await run_platform(settings, demo=demo, duration_s=args.duration, stop=stop)

    try:
        asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        structlog.get_logger("shian").info("shian.stopped")
    return 0


def _registry_check(args: argparse.Namespace) -> int:
    from devices.registry import RegistryError, load_registry

    failed = False
    for path in args.files:
        try:
            registry = load_registry(path)
        except RegistryError as exc:
            failed = True
            print(exc, file=sys.stderr)
        else:
            devices = sum(len(c.devices) for c in registry.canteens)
            print(f"{path}: ok, {len(registry.canteens)} canteens, {devices} devices")
    return 1 if failed else 0


def _deadletter(args: argparse.Namespace) -> int:
    import base64
    import json

    from devices.registry import load_registry
    from gateway.replay import replay
    from shian.app import build_gateway, spool_path
    from shian.clock import SystemClock

    settings = _settings(args)
    path = spool_path(settings)
    if not path.exists():
        print(f"shian: no spool at {path} (is --data-dir or gateway.client_id right?)", file=sys.stderr)
        return 2
    if args.deadletter_command == "replay":
        registry = load_registry(settings.registry)
        gateway = build_gateway(settings, registry, SystemClock())
        spool = gateway.spool
        letters = spool.dead_letters(ids=args.ids, reason=args.reason, pending_only=not args.ids, limit=1_000_000)
        results = replay(spool, registry, letters, SystemClock().now(), gateway.skew)
        for result in results:
            print(f"{result.letter.id}\t{result.note}")
        stored = sum(1 for r in results if r.outcome is not None)
        print(f"{len(results)} replayed: {stored} stored or duplicate, {len(results) - stored} refused again")
        return 0
    from gateway.spool import Spool

    spool = Spool(path)
    if args.deadletter_command == "list":
        for letter in spool.dead_letters(reason=args.reason, pending_only=args.pending, limit=args.limit):
            state = "replayed" if letter.replayed_at else "pending"
            print(
                f"{letter.id}\t{letter.received_at:%Y-%m-%dT%H:%M:%SZ}\t{letter.reason}\t{letter.client_id or '-'}"
                f"\t{state}\t{letter.topic}\t{letter.detail[:120]}"
            )
        return 0
    found = spool.dead_letters(ids=[args.id], limit=1)
    if not found:
        print(f"shian: no dead letter {args.id} in {path}", file=sys.stderr)
        return 1
    letter = found[0]
    try:
        payload: object = letter.payload.decode("utf-8")
    except UnicodeDecodeError:
        payload = None
    document = {
        "id": letter.id,
        "reason": letter.reason,
        "detail": letter.detail,
        "topic": letter.topic,
        "client_id": letter.client_id,
        "received_at": letter.received_at.isoformat(),
        "replayed_at": letter.replayed_at.isoformat() if letter.replayed_at else None,
        "replay_note": letter.replay_note,
        "payload": payload,
        "payload_b64": base64.b64encode(letter.payload).decode("ascii"),
    }
    print(json.dumps(document, ensure_ascii=False, indent=2))
    return 0


def _add_dashboards(commands: Any) -> None:
    boards = commands.add_parser(
        "dashboards",
        help="Grafana boards as code: regenerate the JSON, or push it to a running Grafana",
        description="The boards (city overview, canteen detail, device fleet, platform health, kiosk) are built "
        "in dashboards/boards.py; their JSON and provisioning files are committed under dashboards/.",
    )
    board_commands = boards.add_subparsers(dest="dashboards_command", required=True, metavar="ACTION")
    build = board_commands.add_parser("build", help="write dashboards/generated/*.json and the provisioning files")
    build.add_argument("--check", action="store_true", help="change nothing; exit 1 if the committed files are stale")
    push = board_commands.add_parser(
        "push",
        help="upsert the datasource, a folder and every board into a running Grafana",
        description="Create or update the InfluxDB datasource (uid shian-influxdb), the folder '食安 Shian' and every "
        "board by uid, overwriting older versions. Authenticate with an API token ($SHIAN_GRAFANA_TOKEN) or a user "
        "and password.",
    )
    push.add_argument("--url", required=True, help="Grafana's address, e.g. http://grafana:3000")
    push.add_argument("--token", default=os.environ.get("SHIAN_GRAFANA_TOKEN"), help="service account token")
    push.add_argument("--user", help="instead of a token")
    push.add_argument("--password", help="with --user")
    push.add_argument("--influx-url", required=True, help="InfluxDB as Grafana reaches it")
    push.add_argument("--database", default="shian", help="InfluxDB database (InfluxQL)")
    push.add_argument("--influx-user")
    push.add_argument("--influx-password")


def _dashboards(args: argparse.Namespace) -> int:
    from dashboards import build

    if args.dashboards_command == "build":
        if args.check:
            stale = build.stale()
            for path in stale:
                print(f"stale: {path} (run 'shian dashboards build')", file=sys.stderr)
            return 1 if stale else 0
        for path in build.write():
            print(f"wrote {path}")
        return 0
    from grafana_client.api import GrafanaApi

    from dashboards.push import PushError, push

    credential: str | tuple[str, str] | None = args.token or ((args.user, args.password or "") if args.user else None)
    if credential is None:
        print("shian: give --token (or $SHIAN_GRAFANA_TOKEN) or --user and --password", file=sys.stderr)
        return 2
    try:
        result = push(
            GrafanaApi.from_url(args.url, credential=credential),
            influx_url=args.influx_url,
            database=args.database,
            influx_user=args.influx_user,
            influx_password=args.influx_password,
        )
    except PushError as exc:
        print(f"shian: {exc}", file=sys.stderr)
        return 1
    print(f"datasource {result.datasource}; folder {result.folder}; dashboards: {', '.join(result.dashboards)}")
    return 0


def _add_alerts(commands: Any) -> None:
    alerts = commands.add_parser(
        "alerts",
        help="list, show, acknowledge and resolve alerts",
        description="Alerts from the rules engine's store ({data_dir}/rules-{gateway.client_id}.sqlite). A running "
        "platform publishes the changes made here on the alerts topic within a tick.",
    )
    alert_commands = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    listing = alert_commands.add_parser("list", help="one line per alert, newest first")
    _common(listing)
    listing.add_argument("--state", choices=["open", "acknowledged", "resolved"])
    show = alert_commands.add_parser("show", help="one alert with its audit log")
    _common(show)
    show.add_argument("alert_id")
    ack = alert_commands.add_parser("ack", help="acknowledge an open alert")
    _common(ack)
    ack.add_argument("alert_id")
    ack.add_argument("--by", required=True, help="who acknowledges (recorded in the audit log)")
    ack.add_argument("--note", help="e.g. confirmed / false_positive for a camera violation")
    resolve = alert_commands.add_parser("resolve", help="resolve an alert")
    _common(resolve)
    resolve.add_argument("alert_id")
    resolve.add_argument("--by", required=True)
    resolve.add_argument("--why", required=True, help="recorded in the audit log")


def _alerts(args: argparse.Namespace) -> int:
    from rules.alerts import AlertError, RulesStore
    from shian.app import rules_store_path
    from shian.clock import SystemClock

    settings = _settings(args)
    path = rules_store_path(settings)
    if not path.exists():
        print(f"shian: no rules store at {path} (is --data-dir right?)", file=sys.stderr)
        return 2
    store = RulesStore(path)
    now = SystemClock().now()
    try:
        if args.alerts_command == "list":
            for alert in store.alerts(state=args.state):
                print(
                    f"{alert.alert_id}\t{alert.opened_at:%Y-%m-%dT%H:%M:%SZ}\t{alert.state}\t{alert.severity}\t"
                    f"{alert.rule}\t{alert.canteen_id}\t{alert.message}"
                )
        elif args.alerts_command == "show":
            found = store.get(args.alert_id)
            if found is None:
                print(f"shian: no alert {args.alert_id}", file=sys.stderr)
                return 1
            document = {**json.loads(found.model_dump_json()), "audit": store.audit_for(found.alert_id)}
            print(json.dumps(document, ensure_ascii=False, indent=2))
        elif args.alerts_command == "ack":
            print(store.acknowledge(args.alert_id, args.by, args.note, now).state)
        else:
            print(store.resolve(args.alert_id, args.by, args.why, now).state)
    except AlertError as exc:
        print(f"shian: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


def _add_scenarios(commands: Any) -> None:
    scenario = commands.add_parser(
        "scenario",
        help="run scenario files: situations and the alerts they must (not) raise",
        description="A scenario (YAML) scripts one canteen's devices on a simulated day and lists the alerts it must "
        "and must not raise. The run goes through a real broker (managed unless mqtt.host is set), the gateway and "
        "the rules engine; the simulated clock jumps from step to step. Shipped scenarios: simulators/scenarios/.",
    )
    scenario_commands = scenario.add_subparsers(dest="scenario_command", required=True, metavar="ACTION")
    run = scenario_commands.add_parser("run", help="run scenarios; exit 1 if any expectation fails")
    _common(run)
    run.add_argument("files", nargs="+", type=Path, metavar="FILE")


def _scenario(args: argparse.Namespace) -> int:
    import tempfile

    from shian.app import broker_for
    from simulators.scenario import ScenarioError, load_scenario, run_scenarios

    settings = _settings(args)
    try:
        for path in args.files:
            load_scenario(path)  # every file is valid before anything runs
    except ScenarioError as exc:
        print(f"shian: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, "error")  # the verdicts are the output; alerts are expected here

    async def main() -> list[Any]:
        with tempfile.TemporaryDirectory() as work:
            async with broker_for(settings.model_copy(update={"data_dir": Path(work)})) as address:
                return await run_scenarios(list(args.files), address.host, address.port, Path(work))

    failures = 0
    for verdict in asyncio.run(main()):
        print(f"{'PASS' if verdict.ok else 'FAIL'}  {verdict.scenario}")
        for line in verdict.passed:
            print(f"      ok    {line}")
        for line in verdict.failed:
            print(f"      FAIL  {line}")
        failures += not verdict.ok
    print(f"{len(args.files) - failures} passed, {failures} failed")
    return 1 if failures else 0


def _add_simulate(commands: Any) -> None:
    simulate = commands.add_parser(
        "simulate",
        help="run a whole city's fleet against the platform, or generate the reference city's registry",
        description="Run every device of the registry (default: the generated reference city, 456 school canteens "
        "and 3 suppliers, about 5,000 devices), each on its own connection, against the platform (managed broker "
        "unless mqtt.host is set), on a simulated clock shared with the rules engine. A line every two seconds "
        "shows messages per second, devices online, receipts pending and open alerts. Ctrl-C stops.",
    )
    _common(simulate)
    simulate.add_argument(
        "--generate-registry", type=Path, metavar="FILE", help="only write the reference city's registry to FILE"
    )
    simulate.add_argument("--seed", type=int, default=2026)
    simulate.add_argument("--canteens", type=int, help="only the first N canteens of the registry")
    simulate.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second (default 60)")
    simulate.add_argument(
        "--start",
        type=dt.datetime.fromisoformat,
        metavar="ISO",
        default=dt.datetime(2026, 11, 25, 6, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        help="simulated start, e.g. 2026-11-25T06:30:00+08:00 (a school day)",
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


def _simulate(args: argparse.Namespace) -> int:
    import yaml

    from devices.registry import Registry, load_registry
    from shian.app import run_simulation
    from simulators.city import generate_city

    if args.generate_registry:
        data = generate_city(args.seed)
        registry = Registry.model_validate(data)
        args.generate_registry.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        devices = sum(len(c.devices) for c in registry.canteens)
        print(f"wrote {args.generate_registry}: {len(registry.canteens)} canteens, {devices} devices")
        return 0
    settings = _settings(args)
    configure_logging(settings.log_format, settings.log_level)
    if args.load:
        return _load_mode(args, settings)
    data = yaml.safe_load(args.registry.read_text(encoding="utf-8")) if args.registry else generate_city(args.seed)
    if args.registry:
        load_registry(args.registry)  # errors with file and line
    if args.canteens:
        data["canteens"] = data["canteens"][: args.canteens]
        keep = {c["id"] for c in data["canteens"]}
        districts = {c["district"] for c in data["canteens"]}
        data["accounts"] = [
            a
            for a in data.get("accounts", [])
            if a.get("canteen", next(iter(keep))) in keep and a.get("district", next(iter(districts))) in districts
        ]
    registry = Registry.model_validate(data)

    async def main() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        passwords = yaml.safe_load(args.credentials.read_text(encoding="utf-8")) if args.credentials else None
        stats = await run_simulation(
            settings,
            registry,
            start=args.start,
            speed=args.speed,
            duration_s=args.duration,
            stop=stop,
            passwords=passwords,
        )
        structlog.get_logger("shian").info(
            "fleet.done",
            published=stats.published,
            records=len(stats.produced),
            receipts_pending=stats.pending,
            disconnects=stats.disconnects,
        )

    asyncio.run(main())
    return 0


def _load_mode(args: argparse.Namespace, settings: Settings) -> int:
    from devices.registry import Registry
    from shian.app import broker_for
    from simulators.city import generate_city
    from simulators.load import load_messages, mosquitto_pub_baseline, publish_load

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


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-25") from None


def _query(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from devices.registry import load_registry
    from shian.app import local_store_path
    from storage.local import LocalStore

    settings = _settings(args)
    if settings.storage.backend != "local":
        print(
            f"shian: storage.backend is {settings.storage.backend!r}; query works on the local store", file=sys.stderr
        )
        return 2
    path = local_store_path(settings)
    if not path.exists():
        print(f"shian: no local store at {path} yet (run 'shian demo' or 'shian run' first)", file=sys.stderr)
        return 2
    store = LocalStore(path)
    if args.query_command == "tests":
        tz = ZoneInfo(load_registry(settings.registry).timezone)
        day = args.date or dt.datetime.now(tz).date()
        rows = store.tests_on(day, tz)
        print(f"rapid tests on {day} ({tz.key})")
        print("canteen\tdistrict\ttests\tpassed\tpass rate")
        for row in rows:
            print(f"{row.canteen}\t{row.district}\t{row.tests}\t{row.passed}\t{row.pass_rate:.1%}")
        if not rows:
            print("(no tests)")
    elif args.query_command == "temperatures":
        print("canteen\tcabinet\tat\ttemp_c\tdoor")
        for reading in store.latest_temperatures():
            door = "open" if reading.door_open else "closed"
            print(f"{reading.canteen}\t{reading.device}\t{reading.at:%Y-%m-%dT%H:%M:%SZ}\t{reading.temp_c:.1f}\t{door}")
    else:
        for alert in store.open_alerts():
            print("\t".join(str(alert.get(k, "")) for k in ("time", "canteen", "rule", "severity", "message")))
    store.close()
    return 0


def _broker(args: argparse.Namespace) -> int:
    from broker_config.mosquitto_conf import MosquittoConfig, TlsFiles
    from broker_config.provision import provision
    from devices.registry import RegistryError, load_registry

    if args.broker_command == "config":
        print(MosquittoConfig(port=args.port, persistence_dir=args.persistence_dir).render(), end="")
        return 0
    if args.broker_command == "reload":
        os.kill(args.pid, signal.SIGHUP)
        print(f"sent SIGHUP to {args.pid}: Mosquitto reads its password and ACL files again")
        return 0
    tls_parts = (args.tls_ca, args.tls_cert, args.tls_key)
    if any(tls_parts) and not all(tls_parts):
        print("shian: TLS needs --tls-ca, --tls-cert and --tls-key together", file=sys.stderr)
        return 2
    try:
        registry = load_registry(args.registry)
        tls = (
            TlsFiles(
                cafile=args.tls_ca,
                certfile=args.tls_cert,
                keyfile=args.tls_key,
                require_certificate=args.require_client_cert,
            )
            if args.tls_ca
            else None
        )
        result = provision(
            registry,
            args.out,
            rotate=args.rotate,
            port=args.port,
            bind_address=args.bind,
            tls=tls,
            loopback_port=args.loopback_port,
            persistence_dir=args.persistence_dir,
        )
    except RegistryError as exc:
        print(exc, file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"shian: {exc}", file=sys.stderr)
        return 2
    for what, names in (("new", result.created), ("rotated", result.rotated), ("removed", result.removed)):
        if names:
            print(f"{what}: {', '.join(names)}")
    print(f"wrote {result.passwd}, {result.acl}, {result.config}, {result.credentials} (secret)")
    if not tls:
        print("warning: no TLS; passwords would cross the network in clear (use --tls-ca/--tls-cert/--tls-key)")
    print("apply: shian broker reload --pid <mosquitto pid>   (or: systemctl reload mosquitto)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("run", "demo"):
            return _run(args, demo=args.command == "demo")
        if args.command == "registry":
            return _registry_check(args)
        if args.command == "deadletter":
            return _deadletter(args)
        if args.command == "query":
            return _query(args)
        if args.command == "dashboards":
            return _dashboards(args)
        if args.command == "alerts":
            return _alerts(args)
        if args.command == "scenario":
            return _scenario(args)
        if args.command == "simulate":
            return _simulate(args)
        return _broker(args)
    except (ConfigError, ServerError, SpoolVersionError) as exc:
        print(f"shian: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
