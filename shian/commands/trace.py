"""``shian trace batch|supplier``: every canteen that tested a batch or a supplier's food, and what became of it;
``shian trace suppliers``: the suppliers' scorecard."""

from __future__ import annotations

import argparse
import sys

from shian.commands.common import Commands, add_common, add_period, answer_no, period, settings_from


def add(commands: Commands) -> None:
    trace = commands.add_parser(
        "trace",
        help="trace a batch or a supplier's food to every canteen that tested it (退回并溯源)",
        description="List every test of a batch (or of all of a supplier's food) in a period: the canteen and its "
        "district, the time in the registry's zone, the item, the verdict, and for each failure what was done "
        "with the food (the disposition recorded when its test.failed alert was resolved) and who handled it. "
        "Reads the configured store (the embedded one or InfluxDB) and the rules store. Exit status 1 when "
        "nothing matches.",
    )
    kinds = trace.add_subparsers(dest="trace_command", required=True, metavar="WHAT")
    for name, what in (("batch", "a batch number"), ("supplier", "a supplier's name, exactly as the tests carry it")):
        parser = kinds.add_parser(name, help=f"by {what}")
        add_common(parser)
        parser.add_argument("value", metavar=name.upper(), help=what)
        if name == "batch":
            parser.add_argument("--supplier", help="only this supplier's batch of that number")
        add_period(parser)
        parser.set_defaults(handler=_trace)
    scores = kinds.add_parser(
        "suppliers",
        help="the suppliers' scorecard: tests, failures and failure rate of each in a period",
        description="Every supplier's tests, failures, failure rate, batches and canteens in a period (all of "
        "them, counted in the store), the worst first. Exit status 1 when there is no test in the period.",
    )
    add_common(scores)
    add_period(scores)
    scores.add_argument("--district", help="only this district's canteens")
    scores.set_defaults(handler=_scorecard)


def _scorecard(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from console.trace import scorecard
    from devices.registry import load_registry
    from wiring.console import build_readings

    settings = settings_from(args)
    registry = load_registry(settings.registry)
    tz = ZoneInfo(registry.timezone)
    first, last, start, end = period(args, tz)
    canteens = None
    if args.district:
        canteens = frozenset(c.id for c in registry.canteens if c.district == args.district)
        if not canteens:
            return answer_no(f"no canteen in district {args.district!r}")
    readings = build_readings(settings)
    try:
        tallies = scorecard(readings, canteens=canteens, start=start, end=end)
    finally:
        readings.close()
    if not tallies:
        return answer_no(f"no test from {first} to {last}")
    print(f"{'supplier':<24} {'tests':>7} {'failed':>7} {'rate':>7} {'batches':>8} {'canteens':>9}")
    for t in tallies:
        name = t.supplier or "(not named)"
        print(f"{name:<24} {t.tests:>7} {t.failed:>7} {t.failure_rate:>7.2%} {t.batches:>8} {t.canteens:>9}")
    tests, failed = sum(t.tests for t in tallies), sum(t.failed for t in tallies)
    print(f"{len(tallies)} suppliers, {tests} tests, {failed} failed ({first} – {last}, {tz.key})", file=sys.stderr)
    return 0


def _trace(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from console.trace import received_untested, trace
    from console.words import Words
    from devices.registry import load_registry
    from rules.store import RulesStore
    from wiring.build import rules_store_path
    from wiring.console import build_readings

    settings = settings_from(args)
    registry = load_registry(settings.registry)
    tz = ZoneInfo(registry.timezone)
    first, last, start, end = period(args, tz)
    supplier = args.value if args.trace_command == "supplier" else getattr(args, "supplier", None)
    batch = args.value if args.trace_command == "batch" else None
    words = Words("zh", registry.catalogue)
    readings = build_readings(settings)
    alerts = RulesStore(rules_store_path(settings))
    try:
        lines, truncated = trace(
            registry, readings, alerts, words, canteens=None, start=start, end=end, supplier=supplier, batch=batch
        )
        received = received_untested(
            registry, readings, lines, canteens=None, start=start, end=end, supplier=supplier, batch=batch
        )
    finally:
        readings.close()
        alerts.close()
    if not lines and not received:
        return answer_no(f"no test or delivery of {args.trace_command} {args.value!r} from {first} to {last}")
    for line in lines:
        t = line.test
        handled = f"  {line.handling}" + (f" ({line.handled_by})" if line.handled_by else "") if line.handling else ""
        food = f"{t.sample_name or ''}  {t.supplier or ''} {t.batch_no or ''}"
        note = words.note_for(t)
        verdict = f"{words('item', t.item_code)}  {words('verdict', t.result)}" + (f"（{note}）" if note else "")
        print(f"{t.at.astimezone(tz):%Y-%m-%d %H:%M}  {line.district}  {line.canteen_name}  {food}  {verdict}{handled}")
    for r in received:  # who received the food and never tested it
        d = r.delivery
        where = f"{d.at.astimezone(tz):%Y-%m-%d %H:%M}  {r.district}  {r.canteen_name}"
        print(f"{where}  {d.foods}  {d.supplier} {d.batch_no}  {words.t('received_untested')}")
    failed = sum(1 for line in lines if line.test.result == "fail")
    canteens = len({line.test.canteen for line in lines} | {r.delivery.canteen for r in received})
    print(
        f"{len(lines)} tests at {canteens} canteens, {failed} failed, {len(received)} deliveries never tested "
        f"({first} – {last}, {tz.key})",
        file=sys.stderr,
    )
    if truncated:
        print("shian: more tests than one query returns: narrow --from/--to for the whole list", file=sys.stderr)
    return 0
