"""The parents' daily digest of one canteen: what was tested and found, what was done about failures, the
samples kept against the menu, whether the sample cabinet stayed cold, and how alerts were handled — in plain
Chinese, from the same stores the console reads, with nothing docs/public.md forbids.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from console.privacy import scrub
from console.readings import Readings, TestRow
from console.words import Words
from devices.registry import Canteen, Registry
from rules.alerts import Alert, AlertQuery, alerts_by_record
from rules.store import RulesStore

CabinetState = Literal["kept", "excursion", "no_data"]
#: The sample cabinet's day in words (written °C: every font has it).
CABINET_WORDS: dict[str, str] = {
    "kept": "全天保持在 0–8 °C",
    "excursion": "今日曾超出 0–8 °C，已提醒处理",
    "no_data": "今日无数据",
}


class DigestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TestCounts(DigestModel):
    __test__ = False  # not a pytest class

    total: int = Field(ge=0)
    passed: int = Field(ge=0)
    failed: int = Field(ge=0)
    #: Near the limit: retested before the food is used.
    suspect: int = Field(default=0, ge=0)
    #: Void runs (an inactive reagent, a failed control): tested again.
    invalid: int = Field(default=0, ge=0)


class Failure(DigestModel):
    """A failed test and what was done with the food."""

    sample: str
    supplier: str
    batch: str
    item: str
    handling: str
    #: What the detector or the person who typed it said, where the platform's re-check found it failed.
    note: str | None = None
    #: Whether the food reached the table: "未用于供餐" once it was returned or destroyed; None while unknown.
    served: str | None = None


class MealSamples(DigestModel):
    meal: str
    dishes: int = Field(ge=0)
    kept: int = Field(ge=0)
    #: Why a meal shows fewer samples than dishes: not served yet, or missing (and the school was told).
    note: str | None = None


class AlertCounts(DigestModel):
    raised: int = Field(ge=0)
    handled: int = Field(ge=0)


class DailyDigest(DigestModel):
    """Published retained on ``shian/v1/public/{canteen_id}/daily`` (docs/contract.md), pushed to the canteen's
    parents' groups and shown on its public page."""

    canteen_id: str
    canteen_name: str
    date: dt.date
    #: 1 for the day's digest; 2, 3 … for corrections, when a record arriving later changed the day's result.
    version: int = Field(ge=1)
    correction: bool
    published_at: AwareDatetime
    #: The day in one line: 今日快检全部合格 / 今日 1 项不合格，已退回供应商.
    headline: str = ""
    tests: TestCounts
    failures: list[Failure]
    samples: list[MealSamples]
    cabinet: CabinetState
    alerts: AlertCounts
    #: The whole digest as one message for a parents' group, in Chinese.
    text: str
    #: The canteen's public page of the day (with its public token), when the platform has a public address.
    url: str | None = None

    def facts(self) -> dict[str, object]:
        """What the day's result is, without when and how often it was said: a change here needs a correction."""
        return self.model_dump(include={"headline", "tests", "failures", "samples", "cabinet", "alerts"})


def compose(
    registry: Registry,
    readings: Readings,
    alerts_store: RulesStore,
    canteen: Canteen,
    day: dt.date,
    *,
    version: int,
    at: dt.datetime,
) -> DailyDigest:
    """The digest of ``canteen`` for ``day`` as the stores know it at ``at``."""
    tz = ZoneInfo(registry.timezone)
    start = dt.datetime.combine(day, dt.time(), tz)
    end = start + dt.timedelta(days=1)
    words = Words("zh", registry.catalogue)
    tests: list[TestRow] = readings.tests(frozenset([canteen.id]), start, end)
    day_alerts, _ = alerts_store.search(
        AlertQuery(canteens=frozenset([canteen.id]), opened_from=start, opened_to=end), limit=1000
    )
    by_record = alerts_by_record(day_alerts, "test.failed")
    failures = [
        _failure(t, words, by_record.get((t.device, t.msg_id or "")))
        for t in sorted(tests, key=lambda t: t.at)
        if t.result == "fail"
    ]
    kept: dict[str, set[str]] = {}
    for sample in readings.samples(canteen.id, start, end):
        if sample.meal_date in (None, day.isoformat()):
            kept.setdefault(sample.meal, set()).add(sample.dish_name or sample.sample_id or "")
    menus = alerts_store.menus.between(canteen.id, day, day)
    told = {a.dedup_key.rsplit("|", 1)[-1] for a in day_alerts if a.rule == "sample.missing"}
    samples = []
    for meal in canteen.meals:
        if day.isoweekday() not in meal.weekdays:
            continue
        dishes, count = len(menus.get((day, meal.meal), meal.dishes)), len(kept.get(meal.meal, set()))
        samples.append(
            MealSamples(
                meal=words("meal", meal.meal),
                dishes=dishes,
                kept=count,
                note=_samples_note(count, dishes, at < dt.datetime.combine(day, meal.end, tz), meal.meal in told),
            )
        )
    has_cabinet = any(d.kind == "cabinet" for d in canteen.devices)
    readings_seen = bool(readings.temperatures(canteen.id, start, end)) if has_cabinet else False
    excursion = any(a.rule == "cabinet.temperature" for a in day_alerts)
    cabinet: CabinetState = "excursion" if excursion else ("kept" if readings_seen else "no_data")
    counts = TestCounts(
        total=len(tests),
        passed=sum(1 for t in tests if t.result == "pass"),
        failed=len(failures),
        suspect=sum(1 for t in tests if t.result == "suspect"),
        invalid=sum(1 for t in tests if t.result == "invalid"),
    )
    alert_counts = AlertCounts(raised=len(day_alerts), handled=sum(1 for a in day_alerts if a.state != "open"))
    digest = DailyDigest(
        canteen_id=canteen.id,
        canteen_name=canteen.name,
        date=day,
        version=version,
        correction=version > 1,
        published_at=at,
        headline=headline(counts, failures),
        tests=counts,
        failures=failures,
        samples=samples,
        cabinet=cabinet,
        alerts=alert_counts,
        text="",
    )
    return digest.model_copy(update={"text": render_text(digest)})


def _failure(test: TestRow, words: Words, alert: Alert | None) -> Failure:
    disposed = alert is not None and alert.disposition in ("returned_to_supplier", "destroyed")
    return Failure(
        sample=scrub(test.sample_name),
        supplier=scrub(test.supplier),
        batch=scrub(test.batch_no),
        item=words("item", test.item_code),
        handling=words.handling(alert),
        note=words.note_for(test),
        served="未用于供餐" if disposed else None,
    )


def _samples_note(kept: int, dishes: int, before_the_end: bool, school_told: bool) -> str | None:
    """Why a meal shows fewer samples than dishes."""
    if kept >= dishes:
        return None
    if before_the_end:
        return "尚未供餐" if kept == 0 else "留样进行中"
    return "未按菜品留齐，已提醒学校" if school_told else "未按菜品留齐"


def headline(counts: TestCounts, failures: list[Failure]) -> str:
    """The day in one line, as a parent asks it: was the food all right, and if not, what was done."""
    if not counts.total:
        return "今日暂无快检记录"
    if failures:
        handled = Counter(f.handling for f in failures)
        what = next(iter(handled)) if len(handled) == 1 else "，".join(f"{n} 项{h}" for h, n in sorted(handled.items()))
        return f"今日 {len(failures)} 项不合格，{what}"
    pending = [f"{counts.suspect} 项可疑待复检"] if counts.suspect else []
    pending += [f"{counts.invalid} 项无效已重检"] if counts.invalid else []
    return "今日快检未发现不合格，" + "，".join(pending) if pending else "今日快检全部合格"


_EXPLAINED = {
    "suspect": "可疑 {n} 项：结果接近限量，复检合格前不使用。",
    "invalid": "无效 {n} 项：检测本身失效（如试剂失活），已重新检测。",
}


def render_text(digest: DailyDigest) -> str:
    """The digest as parents read it in their group."""
    day = f"{digest.date.month}月{digest.date.day}日"
    lines = [f"{'【更正】' if digest.correction else ''}【{digest.canteen_name} {day} 食品安全日报】"]
    t = digest.tests
    lines.append(f"{digest.headline}。")
    if t.total:
        lines.append(f"今日快检 {t.total} 项：合格 {t.passed} 项，不合格 {t.failed} 项。")
    for key in ("suspect", "invalid"):
        if getattr(t, key):
            lines.append(_EXPLAINED[key].format(n=getattr(t, key)))
    for f in digest.failures:
        batch = f"，进货批号 {f.batch}" if f.batch else ""
        note = f"（{f.note}）" if f.note else ""
        served = f"，{f.served}" if f.served else ""
        lines.append(f"不合格：{f.sample}（{f.supplier}{batch}）{f.item}{note}——{f.handling}{served}。")
    if digest.samples:
        meals = "；".join(
            f"{m.meal}{m.dishes}道菜，留样{m.kept}份" + (f"（{m.note}）" if m.note else "") for m in digest.samples
        )
        lines.append(f"留样：{meals}。")
    lines.append(f"留样柜温度：{CABINET_WORDS[digest.cabinet]}。")
    a = digest.alerts
    lines.append(f"今日监管提醒 {a.raised} 条，已处理 {a.handled} 条。" if a.raised else "今日无监管提醒。")
    if digest.correction:
        lines.append("此前发布的日报有误，以本条为准。")
    return "\n".join(lines)


def webhook_body(digest: DailyDigest, fmt: str) -> dict[str, object]:
    """A WeCom or DingTalk group robot's text message, or the digest itself as JSON."""
    if fmt == "json":
        return digest.model_dump(mode="json")
    text = digest.text + (f"\n详情：{digest.url}" if digest.url else "")
    return {"msgtype": "text", "text": {"content": text}}
