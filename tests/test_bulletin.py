"""The monthly bulletin over a generated month: every figure recomputed here from the raw records (the spool's
records, the rules store's alerts and audit log, the inspection records), the workbook read back against the
HTML, the HTML printed on A4 by the real browser, and the reference city's month against the programme's own
figures (347 of 456 school canteens tested, about 99 % passing)."""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import re
import shutil
import sqlite3
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import yaml

from console.bulletin.figures import Bulletin, compile_bulletin
from console.bulletin.periods import month_period
from console.bulletin.render import to_html, write_csv, write_xlsx
from console.bulletin.tables import tables
from console.influx_readings import InfluxReadings
from console.readings import LocalReadings
from console.web.routes import reports as report_pages
from devices.messages import AiViolation, CabinetReading, SampleDisposed, SampleRetained, TestResult
from devices.registry import Registry
from devices.topics import DeviceKind
from rules.inspections import InspectionBook
from rules.store import RulesStore
from shian.cli import main
from simulators.city import generate_city
from simulators.history import History, Thinning
from spool import Spool
from spool.records import hydrate
from storage.local import LocalStore
from storage.schema import StoragePoint, points_for
from storage.writers import InfluxV1Writer, TransientWriteError
from tests.browser import chromium
from tests.console_helpers import ConsoleRig, tenants_registry
from tests.servers import InfluxDB1

CST = ZoneInfo("Asia/Shanghai")
MONTH = "2026-11"
PERIOD = month_period(MONTH, CST)


def small_city(per_district: int = 3, districts: int = 3) -> Registry:
    """The reference city's first few school canteens of its first few districts, with their accounts."""
    data = generate_city()
    chosen: list[dict[str, Any]] = []
    seen: Counter[str] = Counter()
    for canteen in data["canteens"]:
        d = canteen["district"]
        if canteen["type"] == "supplier" or (d not in seen and len(seen) == districts) or seen[d] == per_district:
            continue
        seen[d] += 1
        chosen.append(canteen)
    ids, names = {c["id"] for c in chosen}, set(seen)
    data["canteens"] = chosen
    data["accounts"] = [
        a
        for a in data["accounts"]
        if a["role"] in ("gateway", "city")
        or a.get("canteen") in ids
        or (a["role"] == "district" and a["district"] in names)
    ]
    return Registry.model_validate(data)


@dataclass
class Month:
    registry: Registry
    data: Path
    bulletin: Bulletin

    def spool(self) -> Iterator[Any]:
        spool = Spool(self.data / "spool.sqlite")
        try:
            for record in spool.all_records():
                yield record, hydrate(record)
        finally:
            spool.close()


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Month:
    data = tmp_path_factory.mktemp("month")
    registry = small_city()
    rules = RulesStore(data / "rules.sqlite")
    # one canteen's menu names a dish its cabinet never keeps: the retention figure must count it missing
    first = registry.canteens[0]
    meal = first.meals[0]
    rules.menus.set(
        first.id,
        [(dt.date(2026, 11, 10), meal.meal, [*meal.dishes, "凉拌木耳"])],
        by=f"school-{first.id}",
        at=dt.datetime(2026, 11, 9, tzinfo=CST),
    )
    store = LocalStore(data / "store.sqlite")
    history = History(registry, Spool(data / "spool.sqlite"), store, rules, seed=7)
    history.run(PERIOD.start, PERIOD.end, lambda day, result: None)
    history.engine.close()
    store.close()
    readings = LocalReadings(data / "store.sqlite")
    rules, book = RulesStore(data / "rules.sqlite"), InspectionBook(data / "rules.sqlite")
    bulletin = compile_bulletin(readings, rules, book, registry, month_period(MONTH, CST))
    readings.close()
    rules.close()
    book.close()
    return Month(registry, data, bulletin)


def in_month(at: dt.datetime) -> bool:
    return at.astimezone(CST).strftime("%Y-%m") == MONTH


def test_the_tests_coverage_and_failures_equal_the_raw_records(month: Month) -> None:
    b, registry = month.bulletin, month.registry
    tests = [(r, m) for r, m in month.spool() if isinstance(m, TestResult)]
    in_period = [(r, m) for r, m in tests if in_month(m.ts)]
    assert len(in_period) > 500, "a month of a few canteens has hundreds of tests"
    assert b.tests == len(in_period)
    assert b.passed == sum(m.result == "pass" for _, m in in_period)
    assert b.results == Counter(m.result for _, m in in_period)
    assert b.batches == len({(m.supplier or "", m.batch_no) for _, m in in_period if m.batch_no})
    schools = [c for c in registry.canteens if c.type != "supplier"]
    tested = {r.canteen_id for r, _ in in_period}
    equipped = {c.id for c in schools if any(d.kind is DeviceKind.DETECTOR for d in c.devices)}
    assert (b.coverage.total, b.coverage.covered, b.coverage.tested) == (len(schools), len(equipped), len(tested))
    for district in {c.district for c in schools}:
        ids = {c.id for c in schools if c.district == district}
        assert b.coverage_by_district[district].tested == len(ids & tested)
        rows = [m for r, m in in_period if r.canteen_id in ids]
        assert b.pass_by_district.get(district, (0, 0)) == (len(rows), sum(m.result == "pass" for m in rows))
    per_day = Counter(m.ts.astimezone(CST).date() for _, m in in_period)
    assert {day: n for day, (n, _) in b.tests_by_day.items() if n} == dict(per_day)

    failed = [(r, m) for r, m in in_period if m.result == "fail"]
    assert failed, "about one test in a hundred fails"
    assert sorted(f.batch for f in b.failures) == sorted(m.batch_no or "" for _, m in failed)
    dispositions = _dispositions(month.data / "rules.sqlite")
    assert Counter(f.disposition for f in b.failures) == Counter(dispositions.get(m.msg_id) for _, m in failed)
    assert all(f.disposition in ("returned_to_supplier", "destroyed") for f in b.failures)
    retested = sum(
        any(
            o.retest_of == m.sample_no and r2.canteen_id == r.canteen_id and m.ts < o.ts <= m.ts + dt.timedelta(hours=4)
            for r2, o in tests
        )
        for r, m in failed
    )
    assert sum(f.retested for f in b.failures) == retested


def test_sample_retention_cabinets_and_violations_equal_the_raw_records(month: Month) -> None:
    b, registry = month.bulletin, month.registry
    records = list(month.spool())
    retained = {m.sample_id: m for _, m in records if isinstance(m, SampleRetained)}
    kept: dict[tuple[str, dt.date, str], set[str]] = defaultdict(set)
    for r, m in records:
        if isinstance(m, SampleRetained) and in_month(m.ts):
            kept[(r.canteen_id, m.meal_date, m.meal)].add(m.dish_name)
    rules = RulesStore(month.data / "rules.sqlite")
    expected = kept_count = meals = 0
    first, last = dt.date(2026, 11, 1), dt.date(2026, 11, 30)
    for canteen in registry.canteens:
        if canteen.type == "supplier":
            continue
        day = first
        while day <= last:
            if registry.is_school_day(canteen, day):
                for meal in canteen.meals:
                    if day.isoweekday() in meal.weekdays:
                        menu = set(rules.menus.dishes(canteen.id, day, meal.meal) or meal.dishes)
                        meals += 1
                        expected += len(menu)
                        kept_count += len(menu & kept[(canteen.id, day, meal.meal)])
            day += dt.timedelta(days=1)
    rules.close()
    assert (b.meals_expected, b.dishes_expected, b.dishes_retained) == (meals, expected, kept_count)
    assert b.dishes_retained < b.dishes_expected  # the menu's extra dish, and the dishes nobody kept
    assert b.underweight == sum(1 for m in retained.values() if in_month(m.ts) and m.weight_g < 125)
    early = [
        m
        for _, m in records
        if isinstance(m, SampleDisposed)
        and in_month(m.ts)
        and m.sample_id in retained
        and m.ts - retained[m.sample_id].ts < dt.timedelta(hours=48)
    ]
    assert b.early_disposals == len(early)
    readings = [(r, m) for r, m in records if isinstance(m, CabinetReading) and in_month(m.ts)]
    out = [(r, m) for r, m in readings if not 0 <= m.temp_c <= 8]
    assert b.readings_out_of_range == len(out)
    assert b.cabinets_out_of_range == len({r.device_id for r, _ in out})

    violations = [m for _, m in records if isinstance(m, AiViolation) and in_month(m.ts)]
    assert violations
    assert b.violations == len(violations)
    assert b.violations_by_kind == Counter(m.violation for m in violations)
    reviews = _reviews(month.data / "rules.sqlite")
    assert b.violations_confirmed == sum(reviews.get(m.msg_id) == "confirmed" for m in violations)
    assert b.violations_false == sum(reviews.get(m.msg_id) == "false_positive" for m in violations)
    assert b.violations_confirmed
    assert b.violations_false


def test_response_times_camera_online_rate_and_inspections_equal_the_stores(month: Month) -> None:
    b, registry = month.bulletin, month.registry
    db = sqlite3.connect(month.data / "rules.sqlite")
    alerts = [json.loads(body) for (body,) in db.execute("SELECT body FROM alerts")]
    audit: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for alert_id, action, actor, at in db.execute("SELECT alert_id, action, actor, at FROM audit ORDER BY id"):
        audit[alert_id].append((action, actor, at))
    people = {a.username for a in registry.accounts}
    start, end = PERIOD.start, PERIOD.end
    by_level: dict[str, tuple[list[float], list[float], int]] = defaultdict(lambda: ([], [], 0))
    for alert in alerts:
        opened = dt.datetime.fromisoformat(alert["opened_at"])
        if not start <= opened < end or registry.canteen(alert["canteen_id"]) is None:
            continue
        acks, resolves, n = by_level[alert["severity"]]
        ack = next((at for action, _, at in audit[alert["alert_id"]] if action == "acknowledged"), None)
        if ack:
            acks.append((dt.datetime.fromisoformat(ack) - opened).total_seconds() / 60)
        closing = [actor for action, actor, _ in audit[alert["alert_id"]] if action == "resolved"]
        if closing and closing[-1] in people:
            resolves.append((dt.datetime.fromisoformat(alert["resolved_at"]) - opened).total_seconds() / 60)
        by_level[alert["severity"]] = (acks, resolves, n + 1)
    assert set(b.response_by_severity) == set(by_level)
    for level, (acks, resolves, n) in by_level.items():
        r = b.response_by_severity[level]
        assert (r.alerts, r.acknowledged, r.resolved) == (n, len(acks), len(resolves))
        assert r.ack_p50 == pytest.approx(_nearest_rank(acks, 50))
        assert r.ack_p90 == pytest.approx(_nearest_rank(acks, 90))
        assert r.resolve_p90 == pytest.approx(_nearest_rank(resolves, 90))
    assert b.response_by_severity["critical"].acknowledged > 0

    # camera-minutes of kitchen hours (two hours before each meal to its end), and those an offline alert covers
    windows = {c.id: _kitchen(registry, c.id) for c in registry.canteens}
    cameras = {c.id: [d.id for d in c.devices if d.kind is DeviceKind.CAMERA] for c in registry.canteens}
    minutes = sum(sum((e - s).total_seconds() for s, e in windows[c]) / 60 * len(cameras[c]) for c in windows)
    offline = 0.0
    for alert in alerts:
        if alert["rule"] == "device.offline" and alert.get("device_id") in cameras[alert["canteen_id"]]:
            count = 1
        elif alert["rule"] == "canteen.offline":
            count = len(cameras[alert["canteen_id"]])
        else:
            continue
        opened = dt.datetime.fromisoformat(alert["opened_at"])
        closed = dt.datetime.fromisoformat(alert["resolved_at"]) if alert.get("resolved_at") else end
        for s, e in windows[alert["canteen_id"]]:
            offline += max(0.0, (min(e, closed) - max(s, opened)).total_seconds() / 60) * count
    assert b.camera_minutes == pytest.approx(minutes)
    assert b.camera_offline_minutes == pytest.approx(offline)
    assert b.camera_online_rate == pytest.approx(1 - offline / minutes)

    visits = db.execute("SELECT body FROM inspections").fetchall()
    in_period = [v for (v,) in visits if start <= dt.datetime.fromisoformat(json.loads(v)["visited_at"]) < end]
    assert len(b.inspections) == len(in_period) >= 3  # a plan every Monday
    db.close()


def test_the_workbook_and_the_csv_say_what_the_html_says(month: Month, tmp_path: Path) -> None:
    html = to_html(month.bulletin)
    write_xlsx(month.bulletin, tmp_path / "b.xlsx")
    csvs = write_csv(month.bulletin, tmp_path)
    on_page = _html_tables(html)
    book = openpyxl.load_workbook(tmp_path / "b.xlsx")
    laid_out = tables(month.bulletin)
    assert len(book.sheetnames) == len(laid_out) == len(csvs)
    for sheet_name, table in zip(book.sheetnames, laid_out, strict=True):
        sheet = book[sheet_name]
        cells = [[_value(c) for c in row] for row in sheet.iter_rows(min_row=2, values_only=True)]
        if not table.rows:
            assert table.key not in on_page  # "none in this period"
            continue
        assert cells == [[_value(c) for c in row] for row in on_page[table.key]], table.key
    summary = on_page["summary"]
    assert ["学校食堂总数", str(month.bulletin.coverage.total)] in summary
    rows_of = {path.stem.rsplit("-", 1)[-1]: path.read_text(encoding="utf-8-sig").splitlines() for path in csvs}
    for table in laid_out:  # each CSV: the header and a line per row
        assert len(rows_of[table.key]) == 1 + len(table.rows), table.key


async def test_the_html_prints_on_a4_in_the_real_browser(month: Month, tmp_path: Path) -> None:
    page_file = tmp_path / "bulletin.html"
    page_file.write_text(to_html(month.bulletin), encoding="utf-8")
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(page_file.as_uri())
        await page.emulate_media(media="print")
        heading = await page.text_content("h1")
        assert "月度通报" in (heading or "")
        assert await page.locator("table[data-table=failures] tbody tr").count() == len(month.bulletin.failures)
        pdf = await page.pdf(prefer_css_page_size=True, print_background=True)
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert len(boxes) >= 2, "a month's bulletin runs over several pages"
    for width, height in boxes:  # A4 is 210 x 297 mm = 595.3 x 841.9 pt
        assert (float(width), float(height)) == pytest.approx((595.3, 841.9), abs=1.0)


def test_the_reference_citys_month_shows_the_programmes_coverage_and_pass_rate(tmp_path: Path) -> None:
    """Only the detectors of the 456 canteens (their heartbeats thinned to six-hourly), and no meals to keep
    samples of: what coverage and the pass rate are made of."""
    data = generate_city()
    for canteen in data["canteens"]:
        canteen["devices"] = [d for d in canteen["devices"] if d["kind"] == "detector"]
        canteen["meals"] = []
    registry = Registry.model_validate(data)
    rules, store = RulesStore(tmp_path / "rules.sqlite"), LocalStore(tmp_path / "store.sqlite")
    history = History(
        registry, Spool(tmp_path / "spool.sqlite"), store, rules, thinning=Thinning(detector=dt.timedelta(hours=6))
    )
    history.run(PERIOD.start, PERIOD.end, lambda day, result: None)
    history.engine.close()
    store.close()
    readings, rules, book = (
        LocalReadings(tmp_path / "store.sqlite"),
        RulesStore(tmp_path / "rules.sqlite"),
        InspectionBook(tmp_path / "rules.sqlite"),
    )
    b = compile_bulletin(readings, rules, book, registry, month_period(MONTH, CST))
    assert (b.coverage.tested, b.coverage.covered, b.coverage.total) == (347, 347, 456)
    assert (b.coverage_by_tier["lab"].tested, b.coverage_by_tier["strips"].tested) == (109, 238)
    assert 0.985 <= (b.pass_rate or 0) <= 0.995
    assert b.tests > 30_000  # six or so a school morning at each of 347 canteens


def _kitchen(registry: Registry, canteen_id: str) -> list[tuple[dt.datetime, dt.datetime]]:
    canteen = registry.canteen(canteen_id)
    assert canteen is not None
    spans: list[tuple[dt.datetime, dt.datetime]] = []
    for n in range(30):
        day = dt.date(2026, 11, 1) + dt.timedelta(days=n)
        if not registry.is_school_day(canteen, day):
            continue
        # every meal served that weekday (as the rules judge cameras), overlapping ones joined (breakfast's lead
        # can run into lunch's)
        for s, e in sorted(
            (dt.datetime.combine(day, m.start, CST) - dt.timedelta(hours=2), dt.datetime.combine(day, m.end, CST))
            for m in canteen.meals
            if day.isoweekday() in m.weekdays
        ):
            if spans and s <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(e, spans[-1][1]))
            else:
                spans.append((s, e))
    return spans


def _dispositions(path: Path) -> dict[str, str | None]:
    """msg_id of a failed test -> the disposition of the test.failed alert it is evidence of."""
    db = sqlite3.connect(path)
    found: dict[str, str | None] = {}
    for (body,) in db.execute("SELECT body FROM alerts"):
        alert = json.loads(body)
        if alert["rule"] == "test.failed":
            for evidence in alert["evidence"]:
                found[evidence["msg_id"]] = alert.get("disposition")
    db.close()
    return found


def _reviews(path: Path) -> dict[str, str | None]:
    db = sqlite3.connect(path)
    found: dict[str, str | None] = {}
    for (body,) in db.execute("SELECT body FROM alerts"):
        alert = json.loads(body)
        if alert["rule"] == "camera.violation":
            for evidence in alert["evidence"]:
                found[evidence["msg_id"]] = alert.get("review")
    db.close()
    return found


def _nearest_rank(values: list[float], p: int) -> float | None:
    if not values:
        return None
    ranked = sorted(values)
    return ranked[math.ceil(len(ranked) * p / 100) - 1]


def _value(cell: object) -> object:
    """A cell as a number when it reads as one (the workbook keeps 100.0 as 100), else as its text."""
    text = "" if cell is None else str(cell)
    try:
        return float(text)
    except ValueError:
        return text


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("data-table")
            self.found[self._table or ""] = []
        elif tag == "tr" and self._table is not None:
            self.found[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.found[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _html_tables(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.found


def test_the_console_offers_each_account_the_bulletin_of_its_own_scope(month: Month, tmp_path: Path) -> None:
    for name in ("store.sqlite", "rules.sqlite"):
        shutil.copy(month.data / name, tmp_path / name)
    rig = ConsoleRig(tmp_path, registry=month.registry, start=dt.datetime(2026, 12, 1, 9, tzinfo=CST))
    schools = [c for c in month.registry.canteens if c.type != "supplier"]
    district = schools[0].district
    city = next(a.username for a in month.registry.accounts if a.role == "city")
    district_account = next(a.username for a in month.registry.accounts if a.district == district)
    school = f"school-{schools[0].id}"

    def workbook(username: str, **params: str) -> Any:
        client = rig.client(username)
        form = client.get("/reports")
        assert form.status_code == 200
        assert 'action="/reports/monthly"' in form.text
        answer = client.get("/reports/monthly", params={"period": MONTH, "format": "xlsx", **params})
        assert answer.status_code == 200
        assert "attachment" in answer.headers["content-disposition"]
        summary = openpyxl.load_workbook(io.BytesIO(answer.content)).worksheets[0]
        return {row[0]: row[1] for row in summary.iter_rows(min_row=3, values_only=True)}

    assert workbook(city)["学校食堂总数"] == len(schools)
    in_district = [c for c in schools if c.district == district]
    assert workbook(city, district=district)["学校食堂总数"] == len(in_district)
    other = next(c.district for c in schools if c.district != district)
    # a district's account gets its own district's, whatever it asks for
    assert workbook(district_account, district=other)["学校食堂总数"] == len(in_district)
    mine = workbook(school)
    assert mine["学校食堂总数"] == 1
    assert mine["快检样品数"] == sum(s.tests for s in month.bulletin.canteens if s.canteen == schools[0].id)

    client = rig.client(city)
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"/reports/monthly?period={MONTH}&format=csv").content))
    assert len(archive.namelist()) == len(tables(month.bulletin))
    page = client.get(f"/reports/monthly?period={MONTH}&format=html")
    assert "月度通报" in page.text
    assert client.get("/reports/monthly?period=2026-13").status_code == 404
    assert rig.client().get(f"/reports/monthly?period={MONTH}").status_code in (302, 303, 401)


def test_the_bulletin_reads_the_same_from_influxdb(month: Month, influxdb: InfluxDB1, uid: str) -> None:
    """The same month written to a real InfluxDB: every table of the bulletin is the same as from the embedded
    store (InfluxQL is read a day at a time, and each point keeps its time, tags and fields)."""
    database = f"bulletin_{uid}"
    writer = InfluxV1Writer(influxdb.url, database)

    def write(points: list[StoragePoint]) -> None:
        for attempt in range(3):  # as the storage drain does: a transient error is retried
            try:
                writer.write(points)
            except TransientWriteError:
                if attempt == 2:
                    raise
                time.sleep(1)
            else:
                return

    districts = {c.id: c.district for c in month.registry.canteens}
    batch: list[StoragePoint] = []
    for record, _ in month.spool():
        batch += points_for(record, districts[record.canteen_id])
        if len(batch) >= 5000:
            write(batch)
            batch = []
    write(batch)
    readings = InfluxReadings(influxdb.url, database)
    rules, book = RulesStore(month.data / "rules.sqlite"), InspectionBook(month.data / "rules.sqlite")
    on_influx = compile_bulletin(readings, rules, book, month.registry, month_period(MONTH, CST))
    rules.close()
    book.close()
    assert on_influx.tests == month.bulletin.tests > 0
    for mine, theirs in zip(tables(on_influx), tables(month.bulletin), strict=True):
        assert mine == theirs, mine.key


def test_the_report_command_writes_the_three_formats_and_a_pdf(
    month: Month, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(month.data / "store.sqlite", data / "store.sqlite")
    shutil.copy(month.data / "rules.sqlite", data / "rules-shian-gateway.sqlite")  # the default gateway's
    registry = tmp_path / "registry.yaml"
    registry.write_text(yaml.safe_dump(month.registry.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
    common = ["--data-dir", str(data), "--registry", str(registry), "--out", str(tmp_path / "out")]
    assert main(["report", "monthly", "--month", MONTH, *common, "--pdf"]) == 0
    out = capsys.readouterr()
    written = {Path(line).suffix for line in out.out.splitlines()}
    assert written == {".html", ".xlsx", ".csv", ".pdf"}
    assert (tmp_path / "out" / "bulletin-2026-11.pdf").read_bytes().startswith(b"%PDF")
    failures = next((tmp_path / "out").glob("*failures*.csv")).read_text(encoding="utf-8-sig")
    assert month.bulletin.failures
    assert "有机磷和氨基甲酸酯类农药" in failures or "克伦特罗" in failures  # each failure's item, by name
    assert "pesticide." not in failures
    assert "vetdrug." not in failures
    html = (tmp_path / "out" / "bulletin-2026-11.html").read_text(encoding="utf-8")
    assert "与上期（2026-10）相比" in html or "上期无检测记录可比" in html  # the opening paragraph
    assert "发布日期：" in html
    assert f"{month.bulletin.coverage.tested} of {month.bulletin.coverage.total} school canteens" in out.err
    assert main(["report", "weekly", "--week", "2026-W47", *common, "--format", "csv"]) == 0
    assert {p.suffix for p in (tmp_path / "out").glob("bulletin-2026-W47*")} == {".csv"}
    assert main(["report", "monthly", "--month", MONTH, *common, "--district", "nowhere"]) == 1
    assert "no canteen in district 'nowhere'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", "monthly", "--month", "2026-13", *common])


def test_simulate_history_writes_a_month_and_refuses_a_used_data_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", "--history", MONTH, "--canteens", "2", "--data-dir", str(tmp_path), "--log-format", "json"]
    assert main(argv) == 0
    done = [json.loads(line) for line in capsys.readouterr().err.splitlines() if '"history.done"' in line]
    assert done[0]["records"] > 1000
    spool = Spool(tmp_path / "spool-shian-gateway.sqlite")
    assert spool.count_records() == done[0]["records"]
    spool.close()
    assert main(argv) == 2  # a second month into the same directory: refused, nothing mixed
    assert "already holds records" in capsys.readouterr().err
    assert main([*argv[:2], "2026-13", *argv[3:]]) == 2
    capsys.readouterr()

    # the report finds the registry the history was made with, beside its data, without --registry
    out = tmp_path / "out"
    assert main(["report", "monthly", "--month", MONTH, "--data-dir", str(tmp_path), "--out", str(out)]) == 0
    kept = yaml.safe_load((tmp_path / "registry.yaml").read_text(encoding="utf-8"))
    schools = [c for c in kept["canteens"] if c.get("type") != "supplier"]
    assert f"of {len(schools)} school canteens" in capsys.readouterr().err
    # a registry that is not the data's: refused, naming what it lacks
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(tenants_registry().model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
    args = ["report", "monthly", "--month", MONTH, "--data-dir", str(tmp_path), "--registry", str(other)]
    assert main([*args, "--out", str(out)]) == 2
    assert "canteens that" in capsys.readouterr().err


def test_the_console_compiles_a_bulletin_once_while_it_is_fresh(
    month: Month, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A city's month takes seconds to compile: the supervisors who open it after another get the same one until
    it is ten minutes old; each scope is its own."""
    for name in ("store.sqlite", "rules.sqlite"):
        shutil.copy(month.data / name, tmp_path / name)
    rig = ConsoleRig(tmp_path, registry=month.registry, start=dt.datetime(2026, 12, 1, 9, tzinfo=CST))
    compiled: list[str | None] = []

    def counting(*args: Any, **kwargs: Any) -> Bulletin:
        compiled.append(kwargs.get("district"))
        return compile_bulletin(*args, **kwargs)

    monkeypatch.setattr(report_pages, "compile_bulletin", counting)
    city = rig.client(next(a.username for a in month.registry.accounts if a.role == "city"))
    for _ in range(2):
        assert city.get(f"/reports/monthly?period={MONTH}&format=html").status_code == 200
    assert city.get(f"/reports/monthly?period={MONTH}&format=xlsx").status_code == 200
    assert compiled == [None]
    district = month.registry.canteens[0].district
    assert city.get(f"/reports/monthly?period={MONTH}&district={district}").status_code == 200
    assert compiled == [None, district]
    rig.clock.advance(dt.timedelta(minutes=11))
    assert city.get(f"/reports/monthly?period={MONTH}&format=html").status_code == 200
    assert compiled == [None, district, None]
