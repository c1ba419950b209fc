"""The harness's real time-series servers accept writes and answer queries, so storage tests can rely on them."""

from __future__ import annotations

import json
import urllib.parse

from tests.servers import InfluxDB1, VictoriaMetrics, http_get, http_post


def test_influxdb_stores_and_answers_influxql(influxdb: InfluxDB1, uid: str) -> None:
    db = f"harness_{uid}"
    influxdb.create_database(db)
    status, body = http_post(f"{influxdb.url}/write?db={db}&precision=s", b"probe,site=a value=1.5 1764041400\n")
    assert status == 204, body
    status, body = influxdb.query("SELECT value FROM probe", db)
    assert status == 200
    series = json.loads(body)["results"][0]["series"][0]
    assert series["values"] == [["2025-11-25T03:30:00Z", 1.5]]


def test_influxdb_rejects_a_field_type_conflict(influxdb: InfluxDB1, uid: str) -> None:
    """The trap that makes Shian write every number as a float."""
    db = f"harness_{uid}"
    influxdb.create_database(db)
    assert http_post(f"{influxdb.url}/write?db={db}", b"probe value=22i 1\n")[0] == 204
    status, body = http_post(f"{influxdb.url}/write?db={db}", b"probe value=22.5 2\n")
    assert status == 400
    assert b"field type conflict" in body


def test_victoria_metrics_accepts_the_v2_write_api(victoria: VictoriaMetrics, uid: str) -> None:
    line = f"probe_{uid},site=a value=2.5 1764041400000000000\n".encode()
    status, body = http_post(f"{victoria.url}/api/v2/write", line)
    assert status == 204, body
    victoria.flush()
    query = urllib.parse.urlencode({"match[]": f"probe_{uid}_value"})
    exported = http_get(f"{victoria.url}/api/v1/export?{query}")[1]
    row = json.loads(exported.splitlines()[0])
    assert row["metric"] == {"__name__": f"probe_{uid}_value", "site": "a"}
    assert row["values"] == [2.5]
    assert row["timestamps"] == [1764041400000]
