"""docs/deploy.md, followed as an operator would: provision the broker from a registry (TLS for the fleet, a plain
loopback listener for the platform), start Mosquitto on exactly the generated files, run ``shian run`` with the
gateway's account, the console and InfluxDB, and the fleet on its provisioned credentials over TLS for a minute.

Nothing reconnects (the broker makes each client id its username, so two connections under one account would
take each other over), every record the fleet made is stored, and a failed test reaches the school's account,
on the broker and in the console.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx2 as httpx
import yaml

from broker_config.managed import give_to_broker_user
from devices.registry import rules_account
from devices.topics import ROOT, Channel, DeviceKind, DeviceTopic
from mqtt.device_link import MqttLink
from mqtt.link_options import LinkOptions
from runtime.process import ManagedProcess, find_program, free_port, port_accepts
from simulators.payloads import PayloadFactory
from tests.certificates import make_certificates
from tests.children import Child
from tests.helpers import eventually
from tests.servers import InfluxDB1

SHIAN = [sys.executable, "-m", "shian.cli"]
TZ = ZoneInfo("Asia/Shanghai")
#: How long the platform and the fleet run together (the guide's "at least a minute").
FLEET_S = 60
#: The failed test comes from canteen "d2", whose detector the test itself plays; the fleet runs "d0" and "d1".
FLEET_CANTEENS = 2


def _registry(path: Path) -> Path:
    every_day = [1, 2, 3, 4, 5, 6, 7]  # a school day whenever the test runs
    canteens = [
        {
            "id": f"d{i}",
            "name": f"部署测试食堂{i}",
            "district": "城区",
            "type": "primary",
            "testing_tier": "lab",
            "meals": [{"meal": "lunch", "start": "11:40", "end": "12:30", "weekdays": every_day, "dishes": ["米饭"]}],
            "devices": [
                {"id": f"d{i}-{kind}", "kind": kind, "heartbeat_s": 5} for kind in ("detector", "cabinet", "camera")
            ],
        }
        for i in range(FLEET_CANTEENS + 1)
    ]
    accounts = [
        {"username": "gateway", "role": "gateway"},
        {"username": "school-d2", "role": "school", "canteen": "d2"},
        {"username": "district-cq", "role": "district", "district": "城区"},
    ]
    data = {"version": 1, "region": "deploy-guide", "canteens": canteens, "accounts": accounts}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _morning_start() -> dt.datetime:
    """08:00 local of the last day it was 08:00 already: the fleet's detectors test deliveries then, and the
    records are less than a day old, inside the gateway's skew window."""
    now = dt.datetime.now(TZ)
    start = now.replace(hour=8, minute=0, second=0, microsecond=0)
    return start if start < now - dt.timedelta(minutes=2) else start - dt.timedelta(days=1)


def _environment(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SHIAN_")}, **extra}


async def _console_alerts(base: str, username: str, password: str) -> list[dict[str, object]]:
    """The alerts the console's API lists for ``username``, logged in through the login form."""
    async with httpx.AsyncClient(base_url=base, follow_redirects=False, timeout=10) as client:
        form = await client.get("/login")
        match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert match is not None
        login = {"username": username, "password": password, "csrf_token": match.group(1), "next": "/alerts"}
        answer = await client.post("/login", data=login)
        assert answer.status_code == 303, answer.text
        page = await client.get("/api/v1/alerts")
        assert page.status_code == 200, page.text
        alerts: list[dict[str, object]] = page.json()["alerts"]
        return alerts


async def test_the_deploy_guide_runs_as_written(tmp_path: Path, influxdb: InfluxDB1) -> None:
    registry = _registry(tmp_path / "registry.yaml")
    certs = make_certificates(tmp_path / "certs")
    etc, persistence = tmp_path / "etc-mosquitto-shian", tmp_path / "var-lib-mosquitto"
    persistence.mkdir()
    tls_port, loopback_port = free_port(), free_port()
    # shian broker provision, as the guide gives it (and a port and address of this test's own)
    provisioning = Child(
        [
            *SHIAN, "broker", "provision", "--registry", str(registry), "--out", str(etc),
            "--tls-ca", str(certs["ca_crt"]), "--tls-cert", str(certs["server_crt"]),
            "--tls-key", str(certs["server_key"]), "--loopback-port", str(loopback_port),
            "--port", str(tls_port), "--bind", "127.0.0.1", "--persistence-dir", str(persistence),
        ],
        log=tmp_path / "provision.log",
        env=_environment(),
    )  # fmt: skip
    assert provisioning.wait(60) == 0, provisioning.tail()
    # "The broker's certificate and key must be readable by that user too."
    for path in (persistence, certs["ca_crt"], certs["server_crt"], certs["server_key"]):
        give_to_broker_user(path)
    broker = ManagedProcess(
        "mosquitto",
        [find_program("mosquitto", "mosquitto"), "-c", str(etc / "mosquitto.conf")],
        "127.0.0.1",
        loopback_port,
        tmp_path / "mosquitto.log",
    )
    broker.start(timeout=30)
    try:
        assert port_accepts("127.0.0.1", tls_port)
        credentials: dict[str, str] = yaml.safe_load((etc / "credentials.yaml").read_text(encoding="utf-8"))
        await _run_the_guide(tmp_path, registry, etc, credentials, certs, tls_port, loopback_port, influxdb)
        broker_log = broker.log_tail(100_000)
    finally:
        broker.stop()
    # Mosquitto says so whenever a client id is taken over
    assert "already connected" not in broker_log


async def _run_the_guide(
    tmp_path: Path,
    registry: Path,
    etc: Path,
    credentials: dict[str, str],
    certs: dict[str, Path],
    tls_port: int,
    loopback_port: int,
    influxdb: InfluxDB1,
) -> None:
    database = f"deploy_{os.getpid()}_{loopback_port}"
    config = tmp_path / "shian.toml"
    config.write_text(
        f'registry = "{registry}"\ndata_dir = "{tmp_path / "var-lib-shian"}"\nlog_format = "json"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {loopback_port}\nusername = "gateway"\n'
        f'password = "{credentials["gateway"]}"\n'
        f'[storage]\nbackend = "influxdb1"\nurl = "{influxdb.url}"\ndatabase = "{database}"\n'
        f'[web]\nport = 0\npasswords = "{etc / "web-passwords.yaml"}"\n',
        encoding="utf-8",
    )
    platform = Child([*SHIAN, "run", "--config", str(config)], log=tmp_path / "shian-run.log", env=_environment())
    platform.wait_for("gateway.subscribed", timeout=60)
    console = str(platform.wait_for("console.serving", timeout=60)["url"])
    platform.wait_for("rules.connected", timeout=60)
    fleet = Child(
        [
            *SHIAN, "simulate", "--fleet-only", "--registry", str(registry), "--canteens", str(FLEET_CANTEENS),
            "--credentials", str(etc / "credentials.yaml"), "--duration", str(FLEET_S),
            "--start", _morning_start().isoformat(), "--log-format", "json",
        ],
        log=tmp_path / "fleet.log",
        env=_environment(
            SHIAN_MQTT__HOST="127.0.0.1", SHIAN_MQTT__PORT=str(tls_port), SHIAN_MQTT__TLS_CA=str(certs["ca_crt"])
        ),
    )  # fmt: skip

    # Meanwhile canteen d2's detector (this test) sends a failed test over TLS with its own account
    await _a_failed_test_reaches_the_school(console, credentials, certs, tls_port)
    assert fleet.wait(FLEET_S + 120) == 0, fleet.tail()
    done = next(e for e in fleet.events() if e["event"] == "fleet.done")
    assert done["records"] > 0, "the fleet made no record to check"
    assert (done["receipts_pending"], done["rejected"], done["disconnects"]) == (0, 0, 0)
    assert done["stored"] + done["duplicates"] == done["records"]

    platform.signal(signal.SIGTERM)
    assert platform.wait(30) == 0, platform.tail()
    events = platform.events()
    names = [e["event"] for e in events]
    # one connection each, for the whole run: nothing took anything over
    assert (names.count("gateway.connected"), names.count("rules.connected")) == (1, 1)
    assert not [n for n in names if n.endswith(".disconnected") or n.endswith(".session_lost")]
    rules_connection = next(e for e in events if e["event"] == "rules.connected")
    assert rules_connection["client_id"] == rules_account("shian-gateway")
    _everything_was_stored(tmp_path, events, done, influxdb, database)


def _everything_was_stored(
    tmp_path: Path, events: list[dict[str, Any]], done: dict[str, Any], influxdb: InfluxDB1, database: str
) -> None:
    # every record of the fleet is in the spool once, and the storage drain wrote everything to InfluxDB
    spool = sqlite3.connect(tmp_path / "var-lib-shian" / "spool-shian-gateway.sqlite")
    try:
        (events_stored,) = spool.execute(
            "SELECT count(*) FROM records WHERE channel = 'event' AND canteen_id IN ('d0', 'd1')"
        ).fetchone()
        (tests_stored,) = spool.execute("SELECT count(*) FROM records WHERE type = 'test.result'").fetchone()
    finally:
        spool.close()
    assert events_stored == done["records"]
    final_gateway = next(e for e in events if e["event"] == "gateway.stats" and e.get("final"))
    final_storage = next(e for e in events if e["event"] == "storage.stats" and e.get("final"))
    assert final_storage["backlog"] == 0
    assert final_storage["written_records"] == final_gateway["stored"]
    status, body = influxdb.query("SELECT * FROM rapid_test", db=database)
    assert status == 200, body
    series = json.loads(body)["results"][0]["series"]
    assert sum(len(s["values"]) for s in series) == tests_stored


async def _a_failed_test_reaches_the_school(
    console: str, credentials: dict[str, str], certs: dict[str, Path], tls_port: int
) -> None:
    """d2's detector publishes a failed test; the school's account hears the alert on the broker and finds it,
    and only its own canteen's alerts, in the console."""

    def over_tls(username: str) -> LinkOptions:
        return LinkOptions(
            host="127.0.0.1",
            port=tls_port,
            client_id=username,
            username=username,
            password=credentials[username],
            tls_ca=certs["ca_crt"],
        )

    heard: list[dict[str, object]] = []
    async with MqttLink(over_tls("school-d2")) as school:
        await school.subscribe([f"{ROOT}/alerts/d2/#"])

        async def listen() -> None:
            async for incoming in school.messages():
                if incoming.payload:
                    heard.append(json.loads(incoming.payload))

        listening = asyncio.create_task(listen())
        failed = PayloadFactory("d2-detector").test_result(dt.datetime.now(TZ), fail_rate=1.0)
        async with MqttLink(over_tls("d2-detector")) as detector:
            topic = DeviceTopic("d2", DeviceKind.DETECTOR, "d2-detector", Channel.EVENT)
            await detector.publish(str(topic), failed.model_dump_json().encode(), qos=1)
        try:
            await eventually(
                lambda: any(a.get("rule") == "test.failed" for a in heard), timeout=60, what="the school's alert"
            )
        finally:
            listening.cancel()
    in_console = await _console_alerts(console, "school-d2", credentials["school-d2"])
    assert [a["rule"] for a in in_console if a["canteen_id"] == "d2"].count("test.failed") == 1
    assert {a["canteen_id"] for a in in_console} == {"d2"}  # the school's scope, nothing else
