"""What operators use: the Prometheus endpoint and the dead-letter commands."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import pytest

from devices.registry import Registry
from gateway.metrics import serve_metrics
from gateway.service import Gateway
from mqtt.memory_bus import MemoryBroker
from rules.metrics import RulesCollector
from rules.stats import RulesStats
from runtime.clock import FakeClock
from shian.cli import main
from spool import Spool
from tests.gateway_harness import write_registry
from tests.helpers import NOW, eventually, make_registry, records_for


async def _ingest(registry: Registry, spool: Spool, messages: list[tuple[str, bytes]]) -> Gateway:
    gateway = Gateway(registry, FakeClock(NOW), spool)
    broker = MemoryBroker()
    device, gateway_bus = broker.client("device"), broker.client("gateway")
    task = asyncio.create_task(gateway.serve(gateway_bus))
    await eventually(gateway.subscribed.is_set)
    for topic, payload in messages:
        await device.publish(topic, payload, qos=1)
    await eventually(lambda: gateway.stats.received == len(messages), what="all received")
    gateway.request_stop()
    await asyncio.wait_for(task, 5)
    assert gateway_bus.unacked == []
    return gateway


async def test_metrics_endpoint(tmp_path: Path, uid: str) -> None:
    spool = Spool(tmp_path / "spool.sqlite")
    good = records_for(uid, 5)
    bad = [(good[0][0], b"{not json"), ("shian/v1/x/y", b"{}")]
    gateway = await _ingest(make_registry(uid), spool, [*good, good[1], *bad])
    rules = RulesStats(applied=3, lag_records=2, lag_s=1.5)
    port = serve_metrics(
        gateway.stats, spool, "gw-test", port=0, bind="127.0.0.1", also=[RulesCollector(rules, "gw-test")]
    )
    text = await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    )
    assert 'shian_gateway_received_total{instance="gw-test"} 8.0' in text
    assert 'shian_gateway_stored_total{instance="gw-test",type="all"} 5.0' in text
    assert 'shian_gateway_duplicates_total{instance="gw-test"} 1.0' in text
    assert 'shian_gateway_rejected_total{instance="gw-test",reason="invalid_json"} 1.0' in text
    assert 'shian_gateway_rejected_total{instance="gw-test",reason="bad_topic"} 1.0' in text
    assert 'shian_gateway_spool_backlog{instance="gw-test"} 5.0' in text  # no consumer has read yet
    assert 'shian_gateway_ack_latency_seconds_count{instance="gw-test"} 8.0' in text
    assert 'shian_rules_applied_total{instance="gw-test"} 3.0' in text
    assert 'shian_rules_lag_records{instance="gw-test"} 2.0' in text
    assert 'shian_rules_lag_seconds{instance="gw-test"} 1.5' in text


async def test_deadletter_list_show_and_replay_after_fixing_the_registry(
    tmp_path: Path, uid: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A device missing from the registry is dead-lettered; once the operator adds it, replay stores it."""
    messages = records_for(uid, 6, canteens=2)  # half of them from canteen 1, unknown at first
    spool = Spool(tmp_path / "spool-shian-gateway.sqlite")
    await _ingest(make_registry(uid, canteens=1), spool, messages)
    spool.close()
    newcomer = make_registry(uid, canteens=2)
    write_registry(newcomer, tmp_path / "registry.yaml")
    args = ["--data-dir", str(tmp_path), "--registry", str(tmp_path / "registry.yaml")]
    capsys.readouterr()  # the gateway's own log lines

    assert main(["deadletter", "list", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert all("\tunknown_device\t" in line and "\tpending\t" in line for line in lines)

    assert main(["deadletter", "show", "1", *args]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["reason"] == "unknown_device"
    assert json.loads(shown["payload"])["msg_id"]

    assert main(["deadletter", "replay", "--reason", "unknown_device", *args]) == 0
    assert "3 replayed: 3 stored or duplicate, 0 refused again" in capsys.readouterr().out
    spool = Spool(tmp_path / "spool-shian-gateway.sqlite")
    assert spool.count_records() == 6
    assert spool.dead_letters(pending_only=True) == []
    spool.close()
    assert main(["deadletter", "list", "--pending", *args]) == 0
    assert capsys.readouterr().out == ""
