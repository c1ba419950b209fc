"""The storage writer against the real InfluxDB 1.6.7 and VictoriaMetrics."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.messages import WireModel
from devices.topics import Channel, DeviceKind
from runtime.clock import FakeClock
from shian.cli import main
from simulators.payloads import PayloadFactory
from spool import Spool
from storage.drain import CONSUMER, StorageDrain
from storage.schema import points_for
from storage.writers import InfluxV1Writer, InfluxV2Writer, TransientWriteError
from tests import strategies as s
from tests.gateway_harness import write_registry
from tests.helpers import NOW, make_registry, one_of_each
from tests.servers import InfluxDB1, VictoriaMetrics, http_get, http_post
from tests.storage_helpers import fill_spool, influxql, new_record, spool_record


def _database(influxdb: InfluxDB1, uid: str) -> str:
    db = f"shian_{uid}"
    influxdb.create_database(db)
    return db


def _one_of_each_in(tmp_path: Path, uid: str, *, measured_test: bool = False) -> Spool:
    """A spool with a record of every type. ``measured_test``: the test result carries a numeric ``value``
    (the factory picks the test item at random, and a qualitative one has none)."""
    canteen = f"c0-{uid}"
    models = one_of_each(f"dev-{uid}")
    if measured_test:
        factory = PayloadFactory(f"measured-{uid}")
        result = next(r for r in (factory.test_result(NOW) for _ in range(1000)) if r.value is not None)
        models = [(kind, channel, result if model.type == "test.result" else model) for kind, channel, model in models]  # type: ignore[attr-defined]
    records = [
        new_record(model, kind, channel, canteen=canteen, device=f"{kind}0-{uid}") for kind, channel, model in models
    ]
    return fill_spool(tmp_path / "spool.sqlite", records)


def test_every_message_type_lands_with_its_tags_and_fields(influxdb: InfluxDB1, tmp_path: Path, uid: str) -> None:
    db = _database(influxdb, uid)
    spool = _one_of_each_in(tmp_path, uid)
    drain = StorageDrain(spool, make_registry(uid), InfluxV1Writer(influxdb.url, db), FakeClock(NOW))
    assert drain.drain_once() == 8
    assert drain.stats.written_points == 8
    assert spool.checkpoint(CONSUMER) == 8

    test = influxql(influxdb, db, "SELECT * FROM rapid_test")
    assert len(test) == 1
    row = test[0]
    assert row["canteen"] == f"c0-{uid}"
    assert row["district"] == "城区"
    assert row["device"] == f"detector0-{uid}"
    assert row["item_code"] == "pesticide.op_carbamate" or row["item_code"].startswith("vetdrug.")
    assert row["method_std"].startswith(("GB/T", "NY/T"))
    assert row["result"] in {"pass", "fail"}
    if row["unit"] == "qualitative":
        assert row.get("value") is None  # a qualitative test has no value: none is invented
    else:
        assert isinstance(row["value"], int | float)  # JSON writes 25.0 as 25; the field type is checked below
        value_type = {f["fieldKey"]: f["fieldType"] for f in influxql(influxdb, db, "SHOW FIELD KEYS FROM rapid_test")}
        assert value_type["value"] == "float"
    assert row["passed"] in {0.0, 1.0}
    assert row["supplier"]  # free text is a field ...
    tags = influxql(influxdb, db, "SHOW TAG KEYS FROM rapid_test")
    assert {t["tagKey"] for t in tags} == {"canteen", "district", "device", "item_code", "method_std", "result"}

    cabinet = influxql(influxdb, db, "SELECT temp_c, door_open, samples_held FROM cabinet")[0]
    assert cabinet["samples_held"] == 3.0
    assert cabinet["door_open"] in {True, False}
    field_types = {f["fieldKey"]: f["fieldType"] for f in influxql(influxdb, db, "SHOW FIELD KEYS FROM cabinet")}
    assert field_types["samples_held"] == "float"  # an int on the wire, a float in storage

    samples = influxql(influxdb, db, "SELECT * FROM sample_retention")
    assert {(r["action"], r["meal"]) for r in samples} == {("retained", "lunch"), ("disposed", None)}
    assert influxql(influxdb, db, "SELECT confidence, violation FROM camera_violation")[0]["violation"]
    assert influxql(influxdb, db, "SELECT fps FROM camera")
    assert influxql(influxdb, db, "SELECT incubator_c FROM detector")
    status = influxql(influxdb, db, "SELECT state, online, kind FROM device_status")[0]
    assert (status["state"], status["online"], status["kind"]) == ("online", 1.0, "camera")


def test_writing_again_overwrites_and_two_records_in_one_millisecond_are_kept(
    influxdb: InfluxDB1, tmp_path: Path, uid: str
) -> None:
    db = _database(influxdb, uid)
    _, _, reading = one_of_each(f"cab-{uid}")[2]
    twin = reading.model_copy(update={"msg_id": f"{reading.msg_id}-twin"})  # type: ignore[attr-defined]
    records = [
        new_record(m, DeviceKind.CABINET, Channel.TELEMETRY, canteen=f"c0-{uid}", device=f"cabinet0-{uid}")
        for m in (reading, twin)
    ]
    spool = fill_spool(tmp_path / "spool.sqlite", records)
    writer = InfluxV1Writer(influxdb.url, db)
    drain = StorageDrain(spool, make_registry(uid), writer, FakeClock(NOW))
    drain.drain_once()
    writer.write([p for r in spool.all_records() for p in points_for(r, "城区")])  # a replay after a crash
    rows = influxql(influxdb, db, "SELECT temp_c, msg_id FROM cabinet")
    assert sorted(r["msg_id"] for r in rows) == sorted([reading.msg_id, twin.msg_id])  # type: ignore[attr-defined]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(s.any_message, st.integers(1, 10**9))
def test_no_valid_model_makes_a_line_the_server_rejects(
    influxdb: InfluxDB1, case: tuple[DeviceKind, Channel, WireModel], seq: int
) -> None:
    kind, channel, model = case
    influxdb.create_database("shian_property")
    record = spool_record(new_record(model, kind, channel, canteen="c-prop", device="d-prop"), seq)
    InfluxV1Writer(influxdb.url, "shian_property").write(points_for(record, "城区"))


def test_a_type_conflict_is_dead_lettered_and_the_rest_still_lands(
    influxdb: InfluxDB1, tmp_path: Path, uid: str
) -> None:
    db = _database(influxdb, uid)
    spool = _one_of_each_in(tmp_path, uid, measured_test=True)
    # Someone wrote rapid_test.value as a string into this shard before us.
    first = next(r for r in spool.all_records() if r.type == "test.result")
    point = points_for(first, "城区")[0]
    poison = f'rapid_test value="positive" {point.time_ns - 1}'.encode()
    assert http_post(f"{influxdb.url}/write?db={db}", poison)[0] == 204

    drain = StorageDrain(spool, make_registry(uid), InfluxV1Writer(influxdb.url, db), FakeClock(NOW))
    assert drain.drain_once() == 8
    assert drain.stats.rejected == 1
    (reject,) = spool.downstream_rejects(CONSUMER)
    seq, detail, line = reject.seq, reject.detail, reject.item
    assert seq == first.seq
    assert "field type conflict" in detail
    assert line.startswith("rapid_test,")
    assert influxql(influxdb, db, "SELECT count(temp_c) FROM cabinet")[0]["count"] == 1
    assert len(influxql(influxdb, db, "SELECT * FROM sample_retention")) == 2
    assert spool.checkpoint(CONSUMER) == 8  # the reject did not block the checkpoint


async def test_victoria_metrics_takes_numeric_series_through_the_v2_api(
    victoria: VictoriaMetrics, tmp_path: Path, uid: str
) -> None:
    spool = _one_of_each_in(tmp_path, uid)
    writer = InfluxV2Writer(victoria.url, org="shian", bucket="shian", token="unused")
    drain = StorageDrain(spool, make_registry(uid), writer, FakeClock(NOW))
    assert await asyncio.to_thread(drain.drain_once) == 8
    writer.close()
    victoria.flush()
    query = urllib.parse.urlencode({"match[]": f'cabinet_temp_c{{canteen="c0-{uid}"}}'})
    status, body = http_get(f"{victoria.url}/api/v1/export?{query}")
    assert status == 200
    (series,) = [json.loads(line) for line in body.splitlines()]
    reading = next(r for r in spool.all_records() if r.type == "cabinet.reading")
    assert series["metric"]["device"] == f"cabinet0-{uid}"
    assert series["values"] == [json.loads(reading.payload)["temp_c"]]
    assert series["timestamps"] == [points_for(reading, "城区")[0].time_ns // 1_000_000]


def test_a_missing_database_is_created_not_a_reason_to_set_records_aside(
    influxdb: InfluxDB1, tmp_path: Path, uid: str
) -> None:
    db = f"shian_missing_{uid}"  # never created by the test
    spool = _one_of_each_in(tmp_path, uid)
    waiting = StorageDrain(
        spool, make_registry(uid), InfluxV1Writer(influxdb.url, db, create_database=False), FakeClock(NOW)
    )
    with pytest.raises(TransientWriteError, match=f"InfluxDB has no database '{db}': create it"):
        waiting.drain_once()  # retried by the drain's loop until an operator acts; nothing is set aside
    assert spool.downstream_rejects(CONSUMER) == []
    assert spool.checkpoint(CONSUMER) == 0
    drain = StorageDrain(spool, make_registry(uid), InfluxV1Writer(influxdb.url, db), FakeClock(NOW))
    assert drain.drain_once() == 8
    assert (drain.stats.written_records, drain.stats.rejected) == (8, 0)
    assert db in influxdb.query("SHOW DATABASES")[1].decode()
    assert influxql(influxdb, db, "SELECT count(temp_c) FROM cabinet")[0]["count"] == 1


def test_records_set_aside_are_replayed_exactly_once_when_the_cause_is_fixed(
    influxdb: InfluxDB1, tmp_path: Path, uid: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = _database(influxdb, uid)
    spool = _one_of_each_in(tmp_path, uid, measured_test=True)
    spool.close()
    (tmp_path / "spool.sqlite").rename(tmp_path / "spool-shian-gateway.sqlite")
    spool = Spool(tmp_path / "spool-shian-gateway.sqlite")
    first = next(r for r in spool.all_records() if r.type == "test.result")
    poison = f'rapid_test value="positive" {points_for(first, "城区")[0].time_ns - 1}'.encode()
    assert http_post(f"{influxdb.url}/write?db={db}", poison)[0] == 204
    drain = StorageDrain(spool, make_registry(uid), InfluxV1Writer(influxdb.url, db), FakeClock(NOW))
    assert drain.drain_once() == 8
    assert (drain.stats.written_records, drain.stats.rejected) == (7, 1)  # a set-aside record is not "written"
    influxdb.query("DROP MEASUREMENT rapid_test", db)  # the operator removes the conflicting data

    registry = write_registry(make_registry(uid), tmp_path / "registry.yaml")
    config = tmp_path / "shian.toml"
    config.write_text(f'[storage]\nbackend = "influxdb1"\nurl = "{influxdb.url}"\ndatabase = "{db}"\n')
    args = ["--config", str(config), "--registry", str(registry), "--data-dir", str(tmp_path)]
    assert main(["storage", "rejects", "list", "--pending", *args]) == 0
    assert "field type conflict" in capsys.readouterr().out
    assert main(["storage", "rejects", "replay", "--all", *args]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 replayed: 1 written, 0 not"
    assert influxql(influxdb, db, "SELECT count(value) FROM rapid_test")[0]["count"] == 1
    assert main(["storage", "rejects", "replay", "--all", *args]) == 0  # exactly once: nothing is pending now
    assert capsys.readouterr().out.splitlines()[-1] == "0 replayed: 0 written, 0 not"
    assert main(["storage", "rejects", "list", "--pending", *args]) == 0
    assert capsys.readouterr().out == ""


def test_a_large_first_write_to_a_missing_database_lands(influxdb: InfluxDB1, uid: str) -> None:
    """InfluxDB answers a write to a missing database before reading its body and closes the connection: a
    large first batch then fails as a broken pipe rather than the 404. The writer creates the database then."""
    import dataclasses

    from storage.schema import Measurement, StoragePoint

    db = f"shian_large_{uid}"  # never created by the test
    writer = InfluxV1Writer(influxdb.url, db)
    point = StoragePoint(
        Measurement.CABINET, {"canteen": "c0", "device": "cab0"}, {"temp_c": 4.0, "note": "x" * 200}, 0
    )
    points = [dataclasses.replace(point, time_ns=1_795_577_400_000_000_000 + n) for n in range(40_000)]  # ~10 MB
    writer.write(points)
    assert influxql(influxdb, db, "SELECT count(temp_c) FROM cabinet")[0]["count"] == 40_000
