"""A bulletin as titled tables: the one layout the HTML, the XLSX and the CSV files all render, so that the
three always say the same. Labels in Chinese (the default) or English."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from console.bulletin.comparison import DAY_NOTES
from console.bulletin.figures import Bulletin, Coverage, Response
from console.words import Language, Words

Cell = str | int | float | None

_T: dict[str, tuple[str, str]] = {
    "summary": ("总体情况", "Summary"),
    "coverage": ("快检覆盖（按区县）", "Rapid-test coverage by district"),
    "tiers": ("快检覆盖（按检测方式）", "Rapid-test coverage by tier"),
    "days": ("每日快检", "Tests per day"),
    "failures": ("不合格样品及处置", "Failed tests and their disposition"),
    "responses": ("告警响应时间（按级别）", "Alert response times by level"),
    "responses_district": ("告警响应时间（按区县）", "Alert response times by district"),
    "ranking": ("食堂排名（问题由多到少）", "Canteens ranked (most issues first)"),
    "districts": ("区县排名", "Districts ranked"),
    "inspections": ("线下检查", "Offline inspections"),
    # summary rows
    "school_canteens": ("学校食堂总数", "School canteens"),
    "covered": ("具备快检条件", "Equipped to test"),
    "tested": ("开展快检", "Tested at least once"),
    "tests": ("快检样品数", "Samples tested"),
    "batches": ("进货批次（供应商+进货批号）", "Delivery batches (supplier + batch)"),
    "failed": ("不合格", "Failed"),
    "suspect": ("可疑", "Suspect"),
    "invalid": ("无效（对照失效）", "Invalid (control failed)"),
    "retested": ("{within:g}小时内复检", "Retested within {within:g} h"),
    "meals": ("应留样餐次", "Meals to retain"),
    "dishes_expected": ("应留样菜品", "Dishes to retain"),
    "dishes_retained": ("已留样菜品", "Dishes retained"),
    "retention_rate": ("留样率", "Retention rate"),
    "underweight": ("留样不足{weight:g}克", "Samples under {weight:g} g"),
    "early": ("留样不足{hold:g}小时即处理", "Disposed of before {hold:g} h"),
    "out_of_range": ("留样柜超温读数（{low:g}–{high:g} °C 以外）", "Cabinet readings outside {low:g}–{high:g} °C"),
    "cabinets_out": ("出现超温的留样柜", "Cabinets with such readings"),
    "temp_alerts": ("留样柜温度告警", "Cabinet temperature alerts"),
    "camera_online": ("后厨时段摄像头在线率", "Camera online rate in kitchen hours"),
    "violations": ("AI识别违规", "AI violations"),
    "confirmed": ("经核实", "Confirmed"),
    "false": ("误报", "False positives"),
    "unreviewed": ("未复核（含低于置信度未告警）", "Not reviewed (incl. below the confidence floor)"),
    # columns
    "item": ("项目", "Item"),
    "value": ("数值", "Value"),
    "tier": ("检测方式", "Tier"),
    "total": ("食堂数", "Canteens"),
    "coverage_rate": ("覆盖率", "Coverage"),
    "day": ("日期", "Day"),
    "passed": ("合格", "Passed"),
    "batch": ("进货批号", "Delivery batch"),
    "deliveries": ("进货台账登记", "Deliveries recorded"),
    "deliveries_untested": ("收货后未检测的进货", "Deliveries never tested"),
    "day_note": ("说明", "Note"),
    "reading": ("检测值", "Reading"),
    "disposition": ("处置", "Disposition"),
    "handled_by": ("处理人", "Handled by"),
    "verdict_note": ("备注", "Note"),
    "retest": ("{within:g}小时内复检", "Retest ≤ {within:g} h"),
    "level": ("级别", "Level"),
    "alerts": ("告警数", "Alerts"),
    "acked": ("已确认", "Acknowledged"),
    "ack_p50": ("确认用时中位数（分钟）", "To acknowledge, p50 (min)"),
    "ack_p90": ("确认用时P90（分钟）", "To acknowledge, p90 (min)"),
    "resolved": ("已处置", "Resolved by a person"),
    "resolve_p50": ("处置用时中位数（分钟）", "To resolve, p50 (min)"),
    "resolve_p90": ("处置用时P90（分钟）", "To resolve, p90 (min)"),
    "rank": ("名次", "Rank"),
    "issues": ("问题计分", "Issue score"),
    "missing": ("缺少留样", "Dishes not retained"),
    "excursions": ("温度告警", "Temperature alerts"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "pending": ("待处置", "pending"),
    "lab": ("实验室+检测仪", "lab and detector"),
    "strips": ("试纸+读数仪", "test strips and reader"),
    "none": ("未配备", "not equipped"),
}


def word(key: str, lang: Language, **limits: float) -> str:
    """A bulletin's label, else the console's (``console/words.py``); those naming a limit (``{weight}`` g,
    ``{hold}`` h…) say the one the bulletin was made with."""
    if key not in _T:
        return Words(lang).t(key)
    zh, en = _T[key]
    return (zh if lang == "zh" else en).format(**limits)


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    columns: list[str]
    rows: list[list[Cell]]


def _pct(part: int | float, whole: int | float) -> float | None:
    """A share as a percentage rounded to 0.01 (None: nothing to divide by)."""
    return round(100.0 * part / whole, 2) if whole else None


def _percent(rate: float | None) -> float | None:
    return None if rate is None else round(100.0 * rate, 2)


def _min(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def tables(b: Bulletin, lang: Language = "zh") -> list[Table]:
    c = b.limits
    limits = {
        "weight": c.sample_min_weight_g,
        "hold": c.sample_min_hold.total_seconds() / 3600,
        "low": c.cabinet_min_c,
        "high": c.cabinet_max_c,
        "within": c.followup_within.total_seconds() / 3600,
    }

    words = Words(lang, b.items)  # the console's catalogues: items, severities, dispositions

    def w(key: str) -> str:
        return word(key, lang, **limits)

    def yes_no(flag: bool) -> str:
        return w("yes") if flag else w("no")

    failed = len(b.failures)
    names = {s.canteen: s.name for s in b.canteens}
    summary: list[list[Cell]] = [
        [w("school_canteens"), b.coverage.total],
        [w("covered"), b.coverage.covered],
        [w("tested"), b.coverage.tested],
        [w("tests"), b.tests],
        [w("batches"), b.batches],
        [w("deliveries"), b.deliveries[0]],
        [w("deliveries_untested"), b.deliveries[1]],
        [w("pass_rate") + " %", _percent(b.pass_rate)],
        [w("failed"), b.results.get("fail", 0)],
        [w("suspect"), b.results.get("suspect", 0)],
        [w("invalid"), b.results.get("invalid", 0)],
        [w("retested") + " %", _pct(sum(f.retested for f in b.failures), failed)],
        [w("meals"), b.meals_expected],
        [w("dishes_expected"), b.dishes_expected],
        [w("dishes_retained"), b.dishes_retained],
        [w("retention_rate") + " %", _pct(b.dishes_retained, b.dishes_expected)],
        [w("underweight"), b.underweight],
        [w("early"), b.early_disposals],
        [w("out_of_range"), b.readings_out_of_range],
        [w("cabinets_out"), b.cabinets_out_of_range],
        [w("temp_alerts"), b.temperature_alerts],
        [w("camera_online") + " %", _percent(b.camera_online_rate)],
        [w("violations"), b.violations],
        [w("confirmed"), b.violations_confirmed],
        [w("false"), b.violations_false],
        [w("unreviewed"), b.violations - b.violations_confirmed - b.violations_false],
    ]
    return [
        Table("summary", w("summary"), [w("item"), w("value")], summary),
        Table("coverage", w("coverage"), _coverage_columns(w, "district"), _coverage_rows(b.coverage_by_district)),
        Table(
            "tiers",
            w("tiers"),
            _coverage_columns(w, "tier"),
            _coverage_rows({w(tier): c for tier, c in b.coverage_by_tier.items()}),
        ),
        Table(
            "days",
            w("days"),
            [w("day"), w("tests"), w("passed"), w("pass_rate") + " %", w("day_note")],
            [
                [day.isoformat(), n, p, _pct(p, n), _day_note(b.day_notes.get(day), lang)]
                for day, (n, p) in b.tests_by_day.items()
            ],
        ),
        Table(
            "failures",
            w("failures"),
            [w(k) for k in ("time", "district", "canteen", "sample", "item", "supplier", "batch", "reading")]
            + [w("disposition"), w("handled_by"), w("retest"), w("verdict_note")],
            [
                [
                    f.at.strftime("%Y-%m-%d %H:%M"),
                    f.district,
                    f.canteen,
                    f.sample,
                    words("item", f.item_code),
                    f.supplier,
                    f.batch,
                    f.value,
                    words("disposition", f.disposition) if f.disposition else w("pending"),
                    f.handled_by,
                    yes_no(f.retested),
                    words.verdict_note(
                        result="fail", device_result=f.device_result, method_std=f.method_std, entered_by=f.entered_by
                    )
                    or "",
                ]
                for f in b.failures
            ],
        ),
        Table(
            "responses",
            w("responses"),
            [w("level"), *_response_columns(w)],
            [[words("severity", level), *_response_row(r)] for level, r in b.response_by_severity.items()],
        ),
        Table(
            "responses_district",
            w("responses_district"),
            [w("district"), *_response_columns(w)],
            [[district, *_response_row(r)] for district, r in b.response_by_district.items()],
        ),
        Table(
            "districts",
            w("districts"),
            [w("rank"), w("district"), w("coverage_rate") + " %", w("tests"), w("pass_rate") + " %"],
            _district_ranking(b),
        ),
        Table(
            "ranking",
            w("ranking"),
            [w(k) for k in ("rank", "district", "canteen", "issues", "tests", "failed", "missing", "underweight")]
            + [w("early"), w("excursions"), w("confirmed")],
            [
                [
                    rank,
                    s.district,
                    s.name,
                    s.issues,
                    s.tests,
                    s.failed,
                    s.missing_dishes,
                    s.underweight,
                    s.early_disposals,
                    s.excursions,
                    s.violations_confirmed,
                ]
                for rank, s in enumerate(b.canteens[:20], start=1)
            ],
        ),
        Table(
            "inspections",
            w("inspections"),
            [w(k) for k in ("time", "canteen", "inspector", "findings", "rectify_by", "rectified")],
            [
                [
                    i.visited_at.astimezone(b.period.tz).strftime("%Y-%m-%d %H:%M"),
                    names.get(i.canteen_id, i.canteen_id),
                    i.inspector,
                    i.findings,
                    i.rectify_by.isoformat() if i.rectify_by else None,
                    i.rectified_at.astimezone(b.period.tz).strftime("%Y-%m-%d") if i.rectified_at else None,
                ]
                for i in b.inspections
            ],
        ),
    ]


def _day_note(key: str | None, lang: Language) -> str:
    return "" if key is None else DAY_NOTES[key][0 if lang == "zh" else 1]


def _coverage_columns(w: Callable[[str], str], first: str) -> list[str]:
    return [w(first), w("total"), w("covered"), w("tested"), w("coverage_rate") + " %"]


def _coverage_rows(by: dict[str, Coverage]) -> list[list[Cell]]:
    return [[name, c.total, c.covered, c.tested, _pct(c.tested, c.total)] for name, c in by.items()]


def _response_columns(w: Callable[[str], str]) -> list[str]:
    return [w(k) for k in ("alerts", "acked", "ack_p50", "ack_p90", "resolved", "resolve_p50", "resolve_p90")]


def _response_row(r: Response) -> list[Cell]:
    return [
        r.alerts,
        r.acknowledged,
        _min(r.ack_p50),
        _min(r.ack_p90),
        r.resolved,
        _min(r.resolve_p50),
        _min(r.resolve_p90),
    ]


def _district_ranking(b: Bulletin) -> list[list[Cell]]:
    """Districts by pass rate, then by coverage (tested of all school canteens)."""
    rows = []
    for district, coverage in b.coverage_by_district.items():
        tests, passed = b.pass_by_district.get(district, (0, 0))
        rows.append((_pct(passed, tests) or 0.0, _pct(coverage.tested, coverage.total) or 0.0, district, tests))
    rows.sort(key=lambda r: (-r[0], -r[1], r[2]))
    return [[rank, d, cov, tests, rate] for rank, (rate, cov, d, tests) in enumerate(rows, start=1)]
