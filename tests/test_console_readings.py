"""The console's one query layer answers the same on the embedded store and on a real InfluxDB 1.x, and the
canteen page renders from either."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import NamedTuple

import pytest

from console.influx_readings import InfluxReadings
from console.readings import (
    DeliveryRow,
    DeviceSeen,
    LocalReadings,
    Readings,
    SampleRow,
    SupplierTally,
    TempPoint,
    TestRow,
)
from devices.messages import DeviceStatus
from devices.topics import Channel, DeviceKind
from simulators.payloads import PayloadFactory
from storage.local import LocalStore
from storage.schema import StoragePoint, points_for
from storage.writers import InfluxV1Writer
from tests.console_helpers import CANTEENS, ConsoleRig
from tests.rules_helpers import MORNING
from tests.servers import InfluxDB1
from tests.storage_helpers import new_record, spool_record


def _points(now: dt.datetime) -> list[StoragePoint]:
    """A morning of two canteens: tests (one hand-entered), samples, cabinet readings, statuses."""
    points: list[StoragePoint] = []
    seq = 0

    def add(canteen: str, kind: DeviceKind, channel: Channel, model: object, device: str) -> None:
        nonlocal seq
        seq += 1
        record = spool_record(new_record(model, kind, channel, canteen=canteen, device=device), seq)  # type: ignore[arg-type]
        points.extend(points_for(record, CANTEENS[canteen][0]))

    for canteen in ("c-a", "c-b"):
        det, cab = PayloadFactory(f"{canteen}-det"), PayloadFactory(f"{canteen}-cab")
        for minute in range(3):
            at = now + dt.timedelta(minutes=minute)
            add(canteen, DeviceKind.DETECTOR, Channel.EVENT, det.test_result(at, fail_rate=0.5), f"{canteen}-det")
            add(canteen, DeviceKind.CABINET, Channel.TELEMETRY, cab.cabinet_reading(at, 2), f"{canteen}-cab")
        manual = det.test_result(now, fail_rate=0.0).model_copy(
            update={"entered_by": f"school-{canteen[-1]}", "supplier": "O'Brien 农场 \\ 1", "batch_no": "Q1"}
        )
        add(canteen, DeviceKind.DETECTOR, Channel.EVENT, manual, f"{canteen}-manual")
        add(canteen, DeviceKind.CABINET, Channel.EVENT, cab.sample_retained(now, "lunch", "米饭", 1), f"{canteen}-cab")
        status = DeviceStatus(type="device.status", state="online", ts=now)
        add(canteen, DeviceKind.CAMERA, Channel.STATUS, status, f"{canteen}-cam")
        for delivery in det.deliveries(now)[:2]:
            add(canteen, DeviceKind.DETECTOR, Channel.EVENT, delivery, f"{canteen}-det")
    return points


class Answers(NamedTuple):
    tests_a: list[TestRow]
    tests_all: list[TestRow]
    tests_none: list[TestRow]
    samples: list[SampleRow]
    temperatures: list[TempPoint]
    devices: dict[str, DeviceSeen]
    later: list[TestRow]
    traced: list[TestRow]
    suppliers: list[SupplierTally]
    suppliers_a: list[SupplierTally]
    deliveries: list[DeliveryRow]
    delivered: list[DeliveryRow]


def _answers(readings: Readings, now: dt.datetime) -> Answers:
    start, end = now - dt.timedelta(hours=1), now + dt.timedelta(hours=1)
    return Answers(
        tests_a=readings.tests(frozenset(["c-a"]), start, end),
        tests_all=sorted(readings.tests(None, start, end), key=lambda t: (t.canteen, t.at)),
        tests_none=readings.tests(frozenset(), start, end),
        samples=readings.samples("c-b", start, end),
        temperatures=readings.temperatures("c-a", start, end),
        devices=readings.devices("c-a"),
        later=readings.tests(None, end, end + dt.timedelta(hours=1)),
        traced=readings.tests(None, start, end, supplier="O'Brien 农场 \\ 1", batch="Q1"),
        suppliers=sorted(readings.suppliers(None, start, end), key=lambda t: t.supplier),
        suppliers_a=sorted(readings.suppliers(frozenset(["c-a"]), start, end), key=lambda t: t.supplier),
        deliveries=sorted(readings.deliveries(frozenset(["c-a"]), start, end), key=lambda d: d.batch_no),
        delivered=readings.deliveries(
            None, start, end, supplier="晋城市绿源蔬菜配送有限公司", batch=f"LY{now:%Y%m%d}-01"
        ),
    )


@pytest.mark.slow
def test_the_embedded_store_and_influxdb_give_the_same_answers(tmp_path: Path, influxdb: InfluxDB1, uid: str) -> None:
    points = _points(MORNING)
    local = LocalStore(tmp_path / "store.sqlite")
    local.write(points)
    InfluxV1Writer(influxdb.url, f"console_{uid}").write(points)
    on_local = _answers(LocalReadings(tmp_path / "store.sqlite"), MORNING)
    on_influx = _answers(InfluxReadings(influxdb.url, f"console_{uid}"), MORNING)
    assert len(on_local.tests_a) == 4
    assert len(on_local.tests_all) == 8
    assert on_local.tests_none == []
    assert on_local.later == []
    assert [t.entered_by for t in on_local.tests_a if t.entered_by] == ["school-a"]
    assert [s.dish_name for s in on_local.samples] == ["米饭"]
    assert len(on_local.temperatures) == 3
    assert set(on_local.devices) == {"c-a-det", "c-a-cab", "c-a-cam", "c-a-manual"}
    assert on_local.devices["c-a-cam"].state == "online"
    assert sorted(t.canteen for t in on_local.traced) == ["c-a", "c-b"]  # a quote and a backslash in a supplier
    assert len(on_local.deliveries) == 2  # the receiving ledger
    assert sorted(d.canteen for d in on_local.delivered) == ["c-a", "c-b"]
    # the scorecard counts every test, computed apart from the store's own aggregation
    assert sum(t.tests for t in on_local.suppliers) == 8
    assert sum(t.failed for t in on_local.suppliers) == sum(t.result == "fail" for t in on_local.tests_all)
    manual = next(t for t in on_local.suppliers if t.supplier == "O'Brien 农场 \\ 1")
    assert (manual.tests, manual.batches, manual.canteens) == (2, 1, 2)
    assert sum(t.tests for t in on_local.suppliers_a) == 4
    for name, local_answer, influx_answer in zip(Answers._fields, on_local, on_influx, strict=True):
        assert local_answer == influx_answer, name


@pytest.mark.slow
def test_the_canteen_page_renders_from_influxdb(tmp_path: Path, influxdb: InfluxDB1, uid: str) -> None:
    rig = ConsoleRig(tmp_path)
    InfluxV1Writer(influxdb.url, f"page_{uid}").write(_points(MORNING))
    rig.console.readings = InfluxReadings(influxdb.url, f"page_{uid}")
    html = rig.client("school-a").get("/canteens/c-a").text
    assert "手工录入: school-a" in html
    assert html.count('class="verdict-') == 4
    assert "c-a-cab" in html
    assert "在线" in html


def test_an_unreachable_influxdb_is_a_clear_error_page_not_a_crash(tmp_path: Path) -> None:
    rig = ConsoleRig(tmp_path)
    rig.console.readings = InfluxReadings("http://127.0.0.1:9", "nowhere")
    response = rig.client("school-a").get("/canteens/c-a")
    assert response.status_code == 503
    assert "InfluxDB" in response.text
