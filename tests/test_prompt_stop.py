"""SIGTERM stops ``shian run`` within its stated bound whatever its neighbours do: the broker gone, an InfluxDB
that accepts connections and never answers, a console client holding a connection open. What it had accepted
is still in the spool afterwards."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import time
from pathlib import Path

from broker_config.managed import ManagedMosquitto
from mqtt.device_link import MqttLink
from mqtt.link_options import LinkOptions
from shian.commands.platform import STOP_BOUND_S
from spool import Spool
from tests.children import Child
from tests.gateway_harness import GatewayProcess
from tests.helpers import eventually, make_registry, records_for

#: What a machine under load adds to the bound: the interpreter's own exit, the last log lines.
SLACK_S = 3.0


def _stored(path: Path) -> int:
    spool = Spool(path)
    try:
        return spool.count_records()
    finally:
        spool.close()


async def test_sigterm_stops_within_the_bound_with_the_broker_and_influxdb_unreachable(
    tmp_path: Path, uid: str
) -> None:
    registry = make_registry(uid)
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(registry.model_dump_json(), encoding="utf-8")
    silent = socket.create_server(("127.0.0.1", 0))  # takes connections into its backlog, never answers
    console_client = None
    broker = ManagedMosquitto(tmp_path / "broker")
    broker.start()
    try:
        config = GatewayProcess.write_config(
            tmp_path / "shian.toml", broker, registry=registry_file, data_dir=tmp_path / "data", client_id=f"s-{uid}"
        )
        influx = f"http://127.0.0.1:{silent.getsockname()[1]}"
        config.write_text(
            config.read_text() + f'[storage]\nbackend = "influxdb1"\nurl = "{influx}"\n', encoding="utf-8"
        )
        platform = Child([sys.executable, "-m", "shian.cli", "run", "--config", str(config)], log=tmp_path / "run.log")
        platform.wait_for("gateway.subscribed", timeout=60)
        console = str(platform.wait_for("console.serving", timeout=60)["url"])
        host, port = console.removeprefix("http://").split(":")
        console_client = socket.create_connection((host, int(port)))
        console_client.sendall(b"GET /login HTTP/1.1\r\nHost: x\r\n")  # a request it never finishes
        records = records_for(uid, 50, canteens=2)
        async with MqttLink(LinkOptions(host=broker.host, port=broker.port, client_id=f"pub-{uid}")) as link:
            for topic, payload in records:
                await link.publish(topic, payload, qos=1)
        spool = tmp_path / "data" / f"spool-s-{uid}.sqlite"
        await eventually(lambda: _stored(spool) == len(records), timeout=60, what="the records in the spool")
        platform.wait_for("storage.write_retry", timeout=60, what="the drain stuck on the silent InfluxDB")
        broker.kill()
        await asyncio.sleep(0)  # the broker is gone; the platform is reconnecting with backoff
        began = time.monotonic()
        platform.signal(signal.SIGTERM)
        assert platform.wait(STOP_BOUND_S + SLACK_S + 30) == 0
        took = time.monotonic() - began
        assert took < STOP_BOUND_S + SLACK_S, f"stopped after {took:.1f} s, bound {STOP_BOUND_S} s:\n{platform.tail()}"
        assert _stored(spool) == len(records)  # nothing accepted was lost, even by a forced exit
    finally:
        if console_client is not None:
            console_client.close()
        silent.close()
        broker.stop()
