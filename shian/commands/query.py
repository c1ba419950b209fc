"""``shian query tests|temperatures|alerts``: simple questions for the embedded local store."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from shian.commands.common import CommandError, Commands, add_common, date_argument, settings_from

if TYPE_CHECKING:
    from storage.local import LocalStore
    from wiring.settings import Settings


def add(commands: Commands) -> None:
    query = commands.add_parser(
        "query",
        help="answer simple questions from the embedded local store",
        description="Questions for the embedded local store (storage.backend = 'local'). With InfluxDB, ask "
        "InfluxQL or the Grafana boards instead.",
    )
    questions = query.add_subparsers(dest="query_command", required=True, metavar="QUESTION")
    tests = questions.add_parser("tests", help="rapid tests per canteen on a day, with pass rate")
    add_common(tests)
    tests.add_argument("--date", type=date_argument, help="YYYY-MM-DD in the region's time zone (default: today)")
    tests.set_defaults(handler=_tests)
    temperatures = questions.add_parser("temperatures", help="the latest reading of every sample cabinet")
    add_common(temperatures)
    temperatures.set_defaults(handler=_temperatures)
    alerts = questions.add_parser("alerts", help="open alerts, as the store keeps their changes")
    add_common(alerts)
    alerts.set_defaults(handler=_alerts)


def _store(args: argparse.Namespace) -> tuple[LocalStore, Settings]:
    from storage.local import LocalStore
    from wiring.build import local_store_path

    settings = settings_from(args)
    if settings.storage.backend != "local":
        raise CommandError(f"storage.backend is {settings.storage.backend!r}; query works on the local store")
    path = local_store_path(settings)
    if not path.exists():
        raise CommandError(f"no local store at {path} yet (run 'shian demo' or 'shian run' first)")
    return LocalStore(path), settings


def _tests(args: argparse.Namespace) -> int:
    from devices.registry import load_registry

    store, settings = _store(args)
    tz = ZoneInfo(load_registry(settings.registry).timezone)
    day = args.date or dt.datetime.now(tz).date()
    rows = store.tests_on(day, tz)
    print(f"rapid tests on {day} ({tz.key})")
    print("canteen\tdistrict\ttests\tpassed\tpass rate")
    for row in rows:
        print(f"{row.canteen}\t{row.district}\t{row.tests}\t{row.passed}\t{row.pass_rate:.1%}")
    if not rows:
        print("(no tests)")
    store.close()
    return 0


def _temperatures(args: argparse.Namespace) -> int:
    store, _ = _store(args)
    print("canteen\tcabinet\tat\ttemp_c\tdoor")
    for reading in store.latest_temperatures():
        door = "open" if reading.door_open else "closed"
        print(f"{reading.canteen}\t{reading.device}\t{reading.at:%Y-%m-%dT%H:%M:%SZ}\t{reading.temp_c:.1f}\t{door}")
    store.close()
    return 0


def _alerts(args: argparse.Namespace) -> int:
    store, _ = _store(args)
    for alert in store.open_alerts():
        print("\t".join(str(alert.get(k, "")) for k in ("time", "canteen", "rule", "severity", "message")))
    store.close()
    return 0
