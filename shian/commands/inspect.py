"""``shian inspect``: the weekly plan of surprise visits, and the inspectors' records (线下突击检查)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from shian.commands.common import Commands, add_common, add_period, answer_no, date_argument, period, settings_from


def add(commands: Commands) -> None:
    inspect = commands.add_parser(
        "inspect",
        help="the weekly plan of surprise inspections, and the inspectors' records",
        description="Offline inspections: 'plan' draws the week's canteens for surprise visits, weighted by risk "
        "(open and recent alerts, failed tests, missing samples, camera silence, time since the last visit) from "
        "a secret the platform keeps, so the same week always gives the same plan and schools cannot predict "
        "it; 'record' keeps what an inspector found, with a rectification deadline that the rule "
        "inspection.rectification_overdue watches; 'rectified' closes it; 'list' shows the records.",
    )
    actions = inspect.add_subparsers(dest="inspect_command", required=True, metavar="ACTION")

    plan = actions.add_parser("plan", help="draw a week's canteens for surprise visits, by risk")
    add_common(plan)
    plan.add_argument("--week", required=True, metavar="YYYY-Www", help="the ISO week, e.g. 2026-W49")
    plan.add_argument("--district", help="only this district's canteens")
    plan.add_argument("--count", type=int, default=10, help="canteens to visit (default 10)")
    plan.set_defaults(handler=_plan)

    record = actions.add_parser("record", help="keep an inspection's findings and its rectification deadline")
    add_common(record)
    record.add_argument("canteen", metavar="CANTEEN", help="the canteen's id in the registry")
    record.add_argument("--inspector", required=True, help="who inspected")
    record.add_argument("--at", type=dt.datetime.fromisoformat, metavar="ISO", help="when (default: now)")
    record.add_argument("--findings", required=True, help="what was found (free text)")
    record.add_argument("--photo", action="append", default=[], metavar="URL", help="a photo's link (repeatable)")
    record.add_argument("--rectify-by", type=date_argument, metavar="DATE", help="deadline to put it right")
    record.add_argument("--week", metavar="YYYY-Www", help="the plan's week the visit was drawn in")
    record.add_argument("--by", default="operator", help="who records it (default: operator)")
    record.set_defaults(handler=_record)

    rectified = actions.add_parser("rectified", help="record that an inspection's findings were put right")
    add_common(rectified)
    rectified.add_argument("inspection_id", metavar="ID")
    rectified.add_argument("--by", required=True, help="who confirmed it")
    rectified.set_defaults(handler=_rectified)

    listing = actions.add_parser("list", help="inspections in a period")
    add_common(listing)
    add_period(listing)
    listing.set_defaults(handler=_list)


def _plan(args: argparse.Namespace) -> int:
    from devices.registry import load_registry
    from rules.inspections import InspectionBook, describe, week_start, weekly_plan
    from rules.store import RulesStore
    from wiring.build import rules_store_path

    settings = settings_from(args)
    registry = load_registry(settings.registry)
    start = week_start(args.week)
    canteens = None
    if args.district:
        canteens = frozenset(c.id for c in registry.canteens if c.district == args.district)
        if not canteens:
            return answer_no(f"no canteen in district {args.district!r}")
    alerts, book = RulesStore(rules_store_path(settings)), InspectionBook(rules_store_path(settings))
    try:
        chosen, found = weekly_plan(registry, alerts, book, week=args.week, count=args.count, canteens=canteens)
    finally:
        alerts.close()
        book.close()
    for n, canteen_id in enumerate(chosen, start=1):
        canteen = registry.canteen(canteen_id)
        assert canteen is not None
        risk = found[canteen_id]
        print(f"{n:>3}  {canteen_id}  {canteen.district}  {canteen.name}  weight {risk.weight:.1f}  {describe(risk)}")
    print(
        f"{len(chosen)} of {len(found)} canteens for {args.week} ({start} – {start + dt.timedelta(days=6)})",
        file=sys.stderr,
    )
    return 0


def _record(args: argparse.Namespace) -> int:
    from devices.registry import load_registry
    from rules.inspections import InspectionBook
    from runtime.clock import SystemClock
    from wiring.build import rules_store_path

    settings = settings_from(args)
    registry = load_registry(settings.registry)
    now = SystemClock().now()
    visited = args.at or now
    if visited.tzinfo is None:
        from zoneinfo import ZoneInfo

        visited = visited.replace(tzinfo=ZoneInfo(registry.timezone))
    book = InspectionBook(rules_store_path(settings))
    try:
        inspection = book.record(
            registry,
            args.canteen,
            inspector=args.inspector,
            visited_at=visited,
            findings=args.findings,
            photos=args.photo,
            rectify_by=args.rectify_by,
            week=args.week,
            by=args.by,
            at=now,
        )
    finally:
        book.close()
    deadline = f", to be rectified by {inspection.rectify_by}" if inspection.rectify_by else ""
    print(f"recorded inspection {inspection.inspection_id} of {args.canteen}{deadline}")
    return 0


def _rectified(args: argparse.Namespace) -> int:
    from rules.inspections import InspectionBook
    from runtime.clock import SystemClock
    from wiring.build import rules_store_path

    book = InspectionBook(rules_store_path(settings_from(args)))
    try:
        inspection = book.rectified(args.inspection_id, by=args.by, at=SystemClock().now())
    finally:
        book.close()
    print(f"inspection {inspection.inspection_id} of {inspection.canteen_id} rectified")
    return 0


def _list(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from devices.registry import load_registry
    from rules.inspections import InspectionBook
    from wiring.build import rules_store_path

    settings = settings_from(args)
    tz = ZoneInfo(load_registry(settings.registry).timezone)
    first, last, start, end = period(args, tz)
    book = InspectionBook(rules_store_path(settings))
    try:
        found = book.between(start, end)
    finally:
        book.close()
    if not found:
        return answer_no(f"no inspection from {first} to {last}")
    for i in found:
        state = (
            f"rectified {i.rectified_at.astimezone(tz):%m-%d}"
            if i.rectified_at
            else (f"rectify by {i.rectify_by}" if i.rectify_by else "nothing to rectify")
        )
        visited = i.visited_at.astimezone(tz)
        print(f"{i.inspection_id}  {visited:%Y-%m-%d %H:%M}  {i.canteen_id}  {i.inspector}  {state}  {i.findings}")
    return 0
