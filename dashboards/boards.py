"""The five Grafana boards, built with grafanalib from the queries of :mod:`dashboards.queries`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafanalib import core
from grafanalib.influxdb import InfluxDBTarget

from dashboards import queries as q

DATASOURCE_UID = "shian-influxdb"
DATASOURCE = {"type": "influxdb", "uid": DATASOURCE_UID}
TAGS = ["shian", "食安"]


@dataclass(frozen=True)
class PanelSpec:
    """A panel before layout: what it shows and how wide it is (of 24 columns)."""

    kind: str  # stat | table | series
    title: str
    queries: tuple[str, ...]
    width: int = 6
    height: int = 5
    unit: str = "none"
    description: str = ""
    thresholds: tuple[tuple[float | None, str], ...] = ()


def stat(title: str, query: str, unit: str = "none", width: int = 6, description: str = "") -> PanelSpec:
    return PanelSpec("stat", title, (query,), width, 5, unit, description)


def table(title: str, *queries: str, width: int = 24, height: int = 8, description: str = "") -> PanelSpec:
    return PanelSpec("table", title, tuple(queries), width, height, description=description)


def series(
    title: str,
    *queries: str,
    unit: str = "none",
    width: int = 12,
    height: int = 8,
    description: str = "",
    thresholds: tuple[tuple[float | None, str], ...] = (),
) -> PanelSpec:
    return PanelSpec("series", title, tuple(queries), width, height, unit, description, thresholds)


def _targets(spec: PanelSpec) -> list[InfluxDBTarget]:
    fmt = "table" if spec.kind == "table" else "time_series"
    return [
        InfluxDBTarget(query=query, refId=chr(ord("A") + i), datasource=DATASOURCE, format=fmt, rawQuery=True)
        for i, query in enumerate(spec.queries)
    ]


def _panel(spec: PanelSpec, pos: core.GridPos) -> core.Panel:
    common = {
        "title": spec.title,
        "dataSource": DATASOURCE,
        "targets": _targets(spec),
        "gridPos": pos,
        "description": spec.description,
    }
    if spec.kind == "stat":
        return core.Stat(**common, format=spec.unit, reduceCalc="lastNotNull", graphMode="none")
    if spec.kind == "table":
        return core.Table(**common)
    steps = [{"color": color, "value": value} for value, color in spec.thresholds]
    extra = {"fieldConfig": {"defaults": {"custom": {"thresholdsStyle": {"mode": "area"}}}}} if steps else {}
    return core.TimeSeries(
        **common,
        unit=spec.unit,
        thresholds=steps or core.TimeSeries().thresholds,
        extraJson=extra or None,
    )


def _layout(specs: Sequence[PanelSpec]) -> list[core.Panel]:
    panels, x, y, row_height = [], 0, 0, 0
    for spec in specs:
        if x + spec.width > 24:
            x, y, row_height = 0, y + row_height, 0
        panels.append(_panel(spec, core.GridPos(h=spec.height, w=spec.width, x=x, y=y)))
        x += spec.width
        row_height = max(row_height, spec.height)
    return panels


def _variables(canteen: bool) -> core.Templating:
    variables = [
        core.Template(
            name="district",
            label="区县 district",
            query=q.DISTRICTS,
            dataSource=DATASOURCE,
            includeAll=True,
            multi=True,
            allValue=".*",
            type="query",
            refresh=2,
            default="All",
        ),
    ]
    if canteen:
        variables.append(
            core.Template(
                name="canteen",
                label="食堂 canteen",
                query=q.CANTEENS,
                dataSource=DATASOURCE,
                includeAll=True,
                multi=True,
                allValue=".*",
                type="query",
                refresh=2,
                default="All",
            )
        )
    return core.Templating(variables)


def _board(
    uid: str,
    title: str,
    specs: Sequence[PanelSpec],
    *,
    canteen: bool,
    time_from: str = "now/d",
    refresh: str = "1m",
    description: str = "",
) -> core.Dashboard:
    return core.Dashboard(
        title=title,
        uid=uid,
        tags=TAGS,
        description=description,
        panels=_layout(specs),
        templating=_variables(canteen),
        time=core.Time(time_from, "now"),
        timezone="browser",
        refresh=refresh,
    ).auto_panel_ids()


def city_overview() -> core.Dashboard:
    return _board(
        "shian-city",
        "食安 · 全市总览 City overview",
        [
            stat("今日已检测食堂 Canteens tested", q.CANTEENS_TESTED),
            stat("有检测设备的食堂 Canteens with detectors", q.CANTEENS_WITH_DETECTORS),
            stat("今日检测批次 Tests", q.TESTS),
            stat("合格率 Pass rate", q.PASS_RATE, unit="percentunit"),
            table("不合格批次 Failed tests (canteen, item, supplier)", q.FAILED_TESTS),
            series("每餐留样 Samples retained per meal", q.SAMPLES_PER_MEAL, width=12),
            stat("留样不足125克 Underweight samples", q.UNDERWEIGHT_SAMPLES),
            stat("摄像头在线率 Camera online rate", q.CAMERA_ONLINE_RATE, unit="percentunit"),
            series("告警 Alerts opened by severity and district", q.ALERTS_OPENED, width=24),
        ],
        canteen=False,
        description="Regulators' view of the city: testing coverage, results, samples, cameras.",
    )


def canteen_detail() -> core.Dashboard:
    return _board(
        "shian-canteen",
        "食安 · 食堂详情 Canteen detail",
        [
            series("快检时间线 Test timeline (value by item)", q.TEST_TIMELINE, unit="percent"),
            series(
                "留样柜温度 Cabinet temperature (band 0–8 °C)",
                q.CABINET_TEMPERATURE,
                unit="celsius",
                thresholds=((None, "red"), (0, "green"), (8.0001, "red")),
            ),
            stat("在柜留样 Samples held", q.SAMPLES_HELD),
            stat("摄像头在线 Cameras online", q.CAMERA_STATUS),
            table("48小时内留样（到期=留样时间+48h）Samples retained, due 48 h after", q.SAMPLES_RETAINED, width=12),
            table("告警 Alerts", q.CANTEEN_ALERTS),
        ],
        canteen=True,
        time_from="now-2d",
    )


def device_fleet() -> core.Dashboard:
    return _board(
        "shian-fleet",
        "食安 · 设备 Device fleet",
        [
            stat("离线设备 Offline devices", q.OFFLINE_DEVICES),
            table("设备状态 Device state", q.DEVICE_STATE, width=18),
            table("最后上报 Last seen", q.LAST_SEEN, width=12),
            table("时钟偏差 Clock skew (s, device minus gateway)", q.CLOCK_SKEW, width=12),
        ],
        canteen=True,
        time_from="now-24h",
        description="Firmware versions are not on the wire contract yet, so the board does not show them.",
    )


def platform_health() -> core.Dashboard:
    return _board(
        "shian-platform",
        "食安 · 平台健康 Platform health",
        [
            series("网关速率 Gateway rates (msg/s)", q.GATEWAY_RATES, unit="ops", width=24),
            series("拒收原因 Rejects by reason (cumulative)", q.REJECTS_BY_REASON),
            series("缓冲积压 Spool backlog (records)", q.SPOOL_BACKLOG),
            series("写入延迟 Write lag (s)", q.WRITE_LAG, unit="s", width=24),
        ],
        canteen=False,
        time_from="now-6h",
        refresh="30s",
    )


def kiosk() -> core.Dashboard:
    return _board(
        "shian-kiosk",
        "食安 · 快检公示 Rapid-test display",
        [
            stat("今日合格率 Pass rate today", q.KIOSK_PASS_RATE, unit="percentunit", width=24),
            table("今日检测 Today's tests: item, result, tester", q.KIOSK_TESTS, height=14),
        ],
        canteen=True,
        refresh="30s",
        description="For the screen at the rapid-test room's door: pick one canteen.",
    )


BOARDS = {
    "city-overview": city_overview,
    "canteen-detail": canteen_detail,
    "device-fleet": device_fleet,
    "platform-health": platform_health,
    "kiosk": kiosk,
}
