"""``shian report monthly|weekly``: the bulletin (月通报 / 周报) as HTML for A4, XLSX and CSV, optionally PDF."""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from shian.commands.common import CommandError, Commands, add_common, answer_no, settings_from

if TYPE_CHECKING:
    from console.bulletin.figures import Bulletin
    from console.bulletin.periods import Period
    from console.readings import Readings
    from devices.registry import Registry

FORMATS = ("html", "xlsx", "csv")


def add(commands: Commands) -> None:
    report = commands.add_parser(
        "report",
        help="the monthly bulletin or the weekly report, as HTML (A4), XLSX and CSV",
        description="Compute a bulletin from the stored records and the rules store: rapid-test coverage by "
        "district and tier, tests, batches and pass rate, failures with supplier, batch and disposition, retests "
        "within 4 h, sample retention against each meal's menu, cabinet excursions, camera online rate in kitchen "
        "hours, AI violations confirmed and false, alert response times by level and district, the canteens and "
        "districts ranked, and the period's inspections (docs/reports.md defines each figure). Writes "
        "bulletin-PERIOD[-DISTRICT].html, .xlsx and one CSV per table into --out.",
    )
    kinds = report.add_subparsers(dest="report_command", required=True, metavar="KIND")
    monthly = kinds.add_parser("monthly", help="a month's bulletin (月通报)")
    monthly.add_argument("--month", type=_month, help="YYYY-MM (default: last month)")
    weekly = kinds.add_parser("weekly", help="a week's report (周报)")
    weekly.add_argument("--week", help="ISO week like 2026-W48 (default: last week)")
    for parser in (monthly, weekly):
        add_common(parser)
        parser.add_argument("--district", help="only this district's school canteens (default: the whole city)")
        parser.add_argument("--out", type=Path, default=Path("."), metavar="DIR", help="where to write (default .)")
        parser.add_argument("--lang", choices=["zh", "en"], default="zh", help="the bulletin's language (default zh)")
        parser.add_argument(
            "--format",
            dest="formats",
            type=_formats,
            default=FORMATS,
            metavar="LIST",
            help="comma-separated: html, xlsx, csv (default: all three)",
        )
        parser.add_argument(
            "--pdf", action="store_true", help="also print the HTML to PDF with Chromium (A4; needs chromium)"
        )
        parser.set_defaults(handler=_report)


def _month(text: str) -> str:
    from zoneinfo import ZoneInfo

    from console.bulletin.periods import month_period

    try:
        month_period(text, ZoneInfo("UTC"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _formats(text: str) -> tuple[str, ...]:
    chosen = tuple(f.strip() for f in text.split(",") if f.strip())
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(FORMATS)}")
    return chosen


def _report(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from console.bulletin.figures import compile_bulletin
    from console.bulletin.periods import last_label, period_of
    from devices.registry import load_registry
    from rules.config import load_rules
    from rules.inspections import InspectionBook
    from rules.store import RulesStore
    from wiring.build import registry_for_reports, rules_store_path
    from wiring.console import build_readings

    settings = settings_from(args)
    registry_path = registry_for_reports(settings)  # a generated history's own, when none is given
    registry = load_registry(registry_path)
    tz = ZoneInfo(registry.timezone)
    kind = args.report_command
    label = args.month if kind == "monthly" else args.week
    try:
        period = period_of(kind, label or last_label(kind, dt.datetime.now(tz).date()), tz)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.district and not any(c.district == args.district for c in registry.canteens):
        return answer_no(f"no canteen in district {args.district!r}")
    rules_path = rules_store_path(settings)
    if not rules_path.exists():
        raise CommandError(f"no rules store at {rules_path} (is --data-dir right?)")
    readings, rules, book = build_readings(settings), RulesStore(rules_path), InspectionBook(rules_path)
    try:
        _same_canteens(readings, registry, registry_path, period)
        config = load_rules(settings.rules.file, registry.region)  # the limits the alerts were raised with
        bulletin = compile_bulletin(readings, rules, book, registry, period, district=args.district, config=config)
    finally:
        readings.close()
        rules.close()
        book.close()
    for path in _write(bulletin, args):
        print(path)
    rate = f"{bulletin.pass_rate:.2%}" if bulletin.pass_rate is not None else "-"
    c = bulletin.coverage
    print(
        f"{period.label}: {c.tested} of {c.total} school canteens tested ({c.covered} equipped), "
        f"{bulletin.tests} tests, pass rate {rate}, {len(bulletin.failures)} failed",
        file=sys.stderr,
    )
    return 0


def _same_canteens(readings: Readings, registry: Registry, path: Path, period: Period) -> None:
    """A store with tests of canteens the registry lacks was made with another registry: its bulletin would
    be of the few canteens the two share, so it is refused, naming what is missing."""
    from storage.schema import Measurement, Tag

    rows = readings.every(Measurement.RAPID_TEST, [Tag.CANTEEN], None, period.start, period.end)
    unknown = {row[Tag.CANTEEN] for _, row in rows} - {c.id for c in registry.canteens}
    if unknown:
        some = ", ".join(sorted(unknown)[:3])
        raise CommandError(
            f"the store holds tests of {len(unknown)} canteens that {path} does not know ({some}…): give the registry "
            "the data was made with (--registry)"
        )


def _write(bulletin: Bulletin, args: argparse.Namespace) -> list[Path]:
    from console.bulletin.render import stem, to_html, write_csv, write_xlsx

    args.out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    html_path = args.out / f"{stem(bulletin)}.html"
    if "html" in args.formats or args.pdf:
        html_path.write_text(to_html(bulletin, args.lang), encoding="utf-8")
        written.append(html_path)
    if "xlsx" in args.formats:
        xlsx = args.out / f"{stem(bulletin)}.xlsx"
        write_xlsx(bulletin, xlsx, args.lang)
        written.append(xlsx)
    if "csv" in args.formats:
        written += write_csv(bulletin, args.out, args.lang)
    if args.pdf:
        written.append(print_pdf(html_path, html_path.with_suffix(".pdf")))
    return written


def print_pdf(html: Path, pdf: Path) -> Path:
    """The page in Chromium's print mode (A4 from the page's @page rule), headless."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        raise CommandError("--pdf needs Chromium (Debian: apt install chromium fonts-wqy-microhei)")
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-pdf-header-footer",
        f"--print-to-pdf={pdf.resolve()}",
        html.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0 or not pdf.exists():
        raise CommandError(f"chromium could not print {html}: {done.stderr.strip()[-300:]}")
    return pdf
