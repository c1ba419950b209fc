"""The boards: committed JSON up to date, variables where a board shows a district or canteen, every panel's
query run against the real InfluxDB 1.6.7 loaded with simulated data, and `push` against a recording server
that answers as Grafana's HTTP API does."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from grafana_client.api import GrafanaApi

from dashboards import queries as q
from dashboards.boards import BOARDS, DATASOURCE_UID
from dashboards.build import board_json, rendered, stale
from dashboards.push import FOLDER_UID, PushError, push
from devices.registry import Registry
from devices.topics import Channel, DeviceKind
from runtime.clock import FakeClock
from simulators.payloads import PayloadFactory
from spool import Spool
from storage.drain import StorageDrain
from storage.schema import alert_point, gateway_point
from storage.writers import InfluxV1Writer
from tests.servers import InfluxDB1
from tests.storage_helpers import influxql, new_record


def _targets(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["query"]


def test_committed_json_and_provisioning_are_up_to_date() -> None:
    assert stale() == [], "run 'shian dashboards build' and commit the result"
    assert len(rendered()) == len(BOARDS) + 2


def test_boards_are_well_formed_and_use_their_variables() -> None:
    uids = set()
    for name in BOARDS:
        board = board_json(name)
        uids.add(board["uid"])
        assert board["title"]
        assert board["panels"]
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert "district" in variables
        for title, query in _targets(board):
            assert query, title
            if '"canteen" =~' in query:
                assert "$canteen" in query, title
                assert "canteen" in variables, title
            if '"district" =~' in query:
                assert "$district" in query, title
        for panel in board["panels"]:
            assert panel["datasource"] == {"type": "influxdb", "uid": DATASOURCE_UID}
            for target in panel["targets"]:
                assert target["rawQuery"] is True
                assert target["datasource"]["uid"] == DATASOURCE_UID
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
    assert len(uids) == len(BOARDS)
    # boards that show a single canteen's data let the viewer pick it
    for name in ("canteen-detail", "device-fleet", "kiosk"):
        assert {v["name"] for v in board_json(name)["templating"]["list"]} == {"district", "canteen"}


# --- every query against real data ---------------------------------------------------------------------------

DISTRICTS = {"c0": "城区", "c1": "城区", "c2": "泽州县"}


@dataclass
class Facts:
    """What the loaded data holds, counted while it is made."""

    tests: dict[str, int] = field(default_factory=dict)
    passed: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    underweight: int = 0
    meals: dict[str, int] = field(default_factory=dict)
    cameras: dict[str, bool] = field(default_factory=dict)


def _registry() -> Registry:
    return Registry.model_validate(
        {
            "region": "boards",
            "canteens": [
                {
                    "id": c,
                    "name": c,
                    "district": d,
                    "type": "primary",
                    "devices": [{"id": f"{k}-{c}", "kind": k} for k in ("detector", "cabinet", "camera")]
                    + [{"id": f"camera2-{c}", "kind": "camera"}],
                }
                for c, d in DISTRICTS.items()
            ],
        }
    )


@pytest.fixture(scope="module")
def loaded(influxdb: InfluxDB1, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Simulated data of three canteens in the last hours, written through the real storage drain."""
    db = "boards"
    influxdb.create_database(db)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    records, facts = [], Facts()
    for i, canteen in enumerate(DISTRICTS):
        detector, cabinet = PayloadFactory(f"detector-{canteen}"), PayloadFactory(f"cabinet-{canteen}")
        tests = [detector.test_result(now - dt.timedelta(minutes=30 + n), fail_rate=0.0) for n in range(4 + i)]
        if canteen != "c2":  # c2 tested nothing today... of the failing kind
            tests.append(detector.test_result(now - dt.timedelta(minutes=20), fail_rate=1.0))
            facts.failed += 1
        facts.tests[canteen] = len(tests)
        facts.passed[canteen] = sum(t.result == "pass" for t in tests)
        records += [
            new_record(t, DeviceKind.DETECTOR, Channel.EVENT, canteen=canteen, device=f"detector-{canteen}")
            for t in tests
        ]
        records += [
            new_record(
                cabinet.cabinet_reading(now - dt.timedelta(minutes=n), samples_held=3),
                DeviceKind.CABINET,
                Channel.TELEMETRY,
                canteen=canteen,
                device=f"cabinet-{canteen}",
            )
            for n in range(1, 6)
        ]
        for slot, dish in enumerate(["米饭", "青菜", "番茄炒蛋"], 1):
            sample = cabinet.sample_retained(now - dt.timedelta(hours=2), "lunch", dish, slot)
            if canteen == "c1" and slot == 1:
                sample = sample.model_copy(update={"weight_g": 100.0})
                facts.underweight += 1
            records.append(
                new_record(sample, DeviceKind.CABINET, Channel.EVENT, canteen=canteen, device=f"cabinet-{canteen}")
            )
            facts.meals["lunch"] = facts.meals.get("lunch", 0) + 1
        for camera, state in (
            (f"camera-{canteen}", "online"),
            (f"camera2-{canteen}", "offline" if i == 0 else "online"),
        ):
            status = PayloadFactory(camera).status(state, now - dt.timedelta(minutes=10))
            records.append(new_record(status, DeviceKind.CAMERA, Channel.STATUS, canteen=canteen, device=camera))
            facts.cameras[camera] = state == "online"
        detector_status = PayloadFactory(f"detector-{canteen}").status("online", now - dt.timedelta(minutes=50))
        records.append(
            new_record(
                detector_status, DeviceKind.DETECTOR, Channel.STATUS, canteen=canteen, device=f"detector-{canteen}"
            )
        )
    spool = Spool(tmp_path_factory.mktemp("boards") / "spool.sqlite")
    spool.commit(records)
    writer = InfluxV1Writer(influxdb.url, db)
    drain = StorageDrain(spool, _registry(), writer, FakeClock(now))
    while drain.drain_once():
        pass
    assert drain.stats.rejected == 0
    writer.write(
        [
            alert_point(
                alert_id="a1",
                canteen="c0",
                district="城区",
                rule="test.failed",
                severity="critical",
                state="open",
                message="检测不合格",
                at=now - dt.timedelta(minutes=19),
            ),
            alert_point(
                alert_id="a2",
                canteen="c2",
                district="泽州县",
                rule="cabinet.temperature",
                severity="warning",
                state="open",
                message="温度超标",
                at=now - dt.timedelta(minutes=5),
            ),
            *(
                gateway_point(
                    "gw",
                    now - dt.timedelta(minutes=m),
                    received=1000 - 10 * m,
                    stored=990 - 10 * m,
                    duplicates=2,
                    rejected_by_reason={"invalid_json": 3, "wrong_type": 1},
                    spool_backlog=m,
                    write_lag_s=0.5,
                )
                for m in range(10, 0, -1)
            ),
        ]
    )
    return {"db": db, "facts": facts}


def expand(query: str, district: str = ".*", canteen: str = ".*") -> str:
    """Grafana's interpolation of the macros and variables the boards use."""
    return (
        query.replace("$timeFilter", "time >= now() - 1d")
        .replace("$__interval", "5m")
        .replace("$district", district)
        .replace("$canteen", canteen)
    )


def _value(influxdb: InfluxDB1, db: str, query: str, column: str, **variables: str) -> Any:
    rows = influxql(influxdb, db, expand(query, **variables))
    assert len(rows) == 1, rows
    return rows[0][column]


def test_every_panel_query_runs_and_returns_data(influxdb: InfluxDB1, loaded: dict[str, Any]) -> None:
    for name in BOARDS:
        board = board_json(name)
        for variable in board["templating"]["list"]:
            assert influxql(influxdb, loaded["db"], expand(variable["query"])), variable["name"]
        for title, query in _targets(board):
            rows = influxql(influxdb, loaded["db"], expand(query))
            assert rows, f"{name}: {title} returned nothing"


def test_panel_values_match_the_loaded_records(influxdb: InfluxDB1, loaded: dict[str, Any]) -> None:
    db, facts = loaded["db"], loaded["facts"]
    assert isinstance(facts, Facts)
    tests, passed = sum(facts.tests.values()), sum(facts.passed.values())
    assert _value(influxdb, db, q.TESTS, "count") == tests
    assert _value(influxdb, db, q.PASS_RATE, "mean") == pytest.approx(passed / tests)
    assert _value(influxdb, db, q.TESTS, "count", district="泽州县") == facts.tests["c2"]
    assert _value(influxdb, db, q.CANTEENS_TESTED, "count") == 3
    assert _value(influxdb, db, q.CANTEENS_WITH_DETECTORS, "count") == 3
    assert len(influxql(influxdb, db, expand(q.FAILED_TESTS))) == facts.failed
    assert _value(influxdb, db, q.UNDERWEIGHT_SAMPLES, "count") == facts.underweight
    (meal,) = influxql(influxdb, db, expand(q.SAMPLES_PER_MEAL))
    assert (meal["meal"], meal["sum"]) == ("lunch", facts.meals["lunch"])
    cameras = facts.cameras
    assert _value(influxdb, db, q.CAMERA_ONLINE_RATE, "mean") == pytest.approx(sum(cameras.values()) / len(cameras))
    assert _value(influxdb, db, q.OFFLINE_DEVICES, "count") == 1
    alerts = {(r["severity"], r["district"]): r["sum"] for r in influxql(influxdb, db, expand(q.ALERTS_OPENED))}
    assert alerts == {("critical", "城区"): 1, ("warning", "泽州县"): 1}
    # one canteen
    kiosk = influxql(influxdb, db, expand(q.KIOSK_TESTS, canteen="c1"))
    assert len(kiosk) == facts.tests["c1"]
    assert {r["operator"] for r in kiosk} <= {"王芳", "李军", "张丽"}
    assert _value(influxdb, db, q.KIOSK_PASS_RATE, "mean", canteen="c1") == pytest.approx(
        facts.passed["c1"] / facts.tests["c1"]
    )
    assert len(influxql(influxdb, db, expand(q.SAMPLES_RETAINED, canteen="c0"))) == 3
    assert _value(influxdb, db, q.SAMPLES_HELD, "last", canteen="c0") == 3
    temps = influxql(influxdb, db, expand(q.CABINET_TEMPERATURE, canteen="c0"))
    assert temps
    assert all(2.0 < r["mean"] < 8.0 for r in temps)
    # only the cabinet sent telemetry (the detector's tests are events, its status is no telemetry)
    assert {r["device"] for r in influxql(influxdb, db, expand(q.LAST_SEEN, canteen="c2"))} == {"cabinet-c2"}
    # platform health: 10 msg/s between samples a minute apart is 1/6 msg/s
    rates = influxql(influxdb, db, expand(q.GATEWAY_RATES))
    assert max(r["received"] for r in rates) == pytest.approx(10 / 60)
    (rejects,) = influxql(influxdb, db, expand(q.REJECTS_BY_REASON))
    assert (rejects["last_rejected_invalid_json"], rejects["last_rejected_wrong_type"]) == (3, 1)


# --- push against a recording stand-in for Grafana's HTTP API ------------------------------------------------


class FakeGrafana:
    """Answers like Grafana 10's HTTP API for the calls push makes, and records them."""

    def __init__(self, *, token: str = "secret", forbid_dashboards: bool = False) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.datasources: dict[str, Any] = {}
        self.folders: dict[str, Any] = {}
        self.dashboards: dict[str, Any] = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body: Any = json.loads(self.rfile.read(length)) if length else {}
                outer.requests.append((method, self.path, body))
                if self.headers.get("Authorization") != f"Bearer {token}":
                    return self._answer(401, {"message": "Unauthorized"})
                path = self.path
                if method == "GET" and (m := re.fullmatch(r"/api/datasources/uid/([\w-]+)", path)):
                    found = outer.datasources.get(m[1])
                    return self._answer(200, found) if found else self._answer(404, {"message": "not found"})
                if method == "POST" and path == "/api/datasources":
                    outer.datasources[body["uid"]] = body
                    return self._answer(200, {"message": "Datasource added", "datasource": body})
                if method == "PUT" and (m := re.fullmatch(r"/api/datasources/uid/([\w-]+)", path)):
                    outer.datasources[m[1]] = body
                    return self._answer(200, {"message": "Datasource updated"})
                if method == "GET" and (m := re.fullmatch(r"/api/folders/([\w-]+)", path)):
                    found = outer.folders.get(m[1])
                    return self._answer(200, found) if found else self._answer(404, {"message": "folder not found"})
                if method == "POST" and path == "/api/folders":
                    outer.folders[body["uid"]] = body
                    return self._answer(200, {"uid": body["uid"], "title": body["title"]})
                if method == "POST" and path == "/api/dashboards/db":
                    if forbid_dashboards:
                        return self._answer(403, {"message": "Access denied"})
                    if body["folderUid"] not in outer.folders:
                        return self._answer(400, {"message": "folder not found"})
                    uid = body["dashboard"]["uid"]
                    if uid in outer.dashboards and not body.get("overwrite"):
                        return self._answer(412, {"status": "version-mismatch"})
                    outer.dashboards[uid] = body
                    return self._answer(200, {"status": "success", "uid": uid, "version": 1})
                return self._answer(404, {"message": f"no route {method} {path}"})

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _api(grafana: FakeGrafana, token: str = "secret") -> GrafanaApi:
    api: GrafanaApi = GrafanaApi.from_url(grafana.url, credential=token)
    return api


def test_push_creates_then_updates_by_uid() -> None:
    grafana = FakeGrafana()
    first = push(_api(grafana), influx_url="http://influx:8086", database="shian")
    assert (first.datasource, first.folder) == ("created", "created")
    assert sorted(grafana.dashboards) == sorted(board_json(n)["uid"] for n in BOARDS)
    for payload in grafana.dashboards.values():
        assert payload["folderUid"] == FOLDER_UID
        assert payload["overwrite"] is True
        assert "id" not in payload["dashboard"]
    assert grafana.datasources[DATASOURCE_UID]["jsonData"] == {"dbName": "shian", "httpMode": "GET"}
    grafana.requests.clear()
    second = push(_api(grafana), influx_url="http://influx:8086", database="shian")
    assert (second.datasource, second.folder) == ("updated", "exists")
    methods = [(m, p) for m, p, _ in grafana.requests]
    assert ("PUT", f"/api/datasources/uid/{DATASOURCE_UID}") in methods
    assert ("POST", "/api/folders") not in methods
    assert methods.count(("POST", "/api/dashboards/db")) == len(BOARDS)


def test_push_explains_authentication_and_permission_failures() -> None:
    grafana = FakeGrafana()
    with pytest.raises(PushError, match=r"refused the credentials.*401"):
        push(_api(grafana, token="wrong"), influx_url="http://influx:8086", database="shian")
    forbidden = FakeGrafana(forbid_dashboards=True)
    with pytest.raises(PushError, match=r"403.*Editor role"):
        push(_api(forbidden), influx_url="http://influx:8086", database="shian")


def test_build_check_fails_on_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboards import build

    monkeypatch.setattr(build, "GENERATED", tmp_path)
    assert any(p.parent == tmp_path for p in build.stale())
    build.write()
    assert build.stale() == []
    (tmp_path / "kiosk.json").write_text("{}")
    assert build.stale() == [tmp_path / "kiosk.json"]
