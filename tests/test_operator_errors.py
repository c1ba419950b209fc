"""What an operator meets when something is wrong: one line naming the file, line or server and the problem,
exit status 2, never a traceback; and what anyone may publish on an operator topic never stops the platform."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from broker_config.managed import ManagedMosquitto
from devices.topics import alert_ack_topic, alert_topic
from mqtt.bus import Incoming
from mqtt.device_link import MqttLink
from mqtt.link_options import LinkOptions
from rules.config import RulesConfig
from rules.engine import RulesEngine
from rules.runner import UNREADABLE, RulesRunner
from rules.store import RulesStore
from runtime.clock import FakeClock
from shian.cli import main
from spool import Spool
from tests.helpers import NOW, eventually, make_registry
from wiring.loops import watch_operator_topics


def _shian(*words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shian.cli", *words], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def bad_registry(tmp_path: Path) -> Path:
    path = tmp_path / "city.yaml"
    path.write_text("region: x\ncanteens:\n  - id: c1\n    name: [\n")
    return path


@pytest.mark.parametrize("command", ["run", "demo", "simulate"])
def test_a_broken_registry_is_one_line_naming_the_file_and_line(command: str, bad_registry: Path) -> None:
    result = _shian(command, "--registry", str(bad_registry), "--data-dir", str(bad_registry.parent / "var"))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"shian: {bad_registry}:")
    assert "not valid YAML" in line


def test_a_missing_registry_is_one_line(tmp_path: Path) -> None:
    result = _shian("run", "--registry", str(tmp_path / "nope.yaml"), "--data-dir", str(tmp_path / "var"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"shian: {tmp_path / 'nope.yaml'}: cannot read the registry: No such file or directory"
    ]


def test_a_broken_rules_file_is_one_line_and_no_broker_is_left(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("defaults:\n  sample_min_weight_g: -1\n")
    config = tmp_path / "shian.toml"
    config.write_text(f'[rules]\nfile = "{rules}"\n')
    result = _shian("run", "--config", str(config), "--data-dir", str(tmp_path / "var"), "--duration", "5")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"shian: {rules} (region 'jincheng-demo'): sample_min_weight_g: Input should be greater")


def test_an_unreachable_grafana_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    words = ["dashboards", "push", "--url", "http://127.0.0.1:9", "--token", "t", "--influx-url", "http://influx"]
    assert main(words) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("shian: cannot reach Grafana at http://127.0.0.1:9: ")


def test_an_unreadable_acknowledgement_is_refused_into_the_audit_log(tmp_path: Path) -> None:
    registry = make_registry("ack")
    store = RulesStore(tmp_path / "rules.sqlite")
    engine = RulesEngine(registry, RulesConfig(), store, FakeClock(NOW))
    runner = RulesRunner(engine, Spool(tmp_path / "spool.sqlite"), [])
    alert, _ = store.raise_alert(
        dedup_key="k", rule="test.failed", severity="critical", canteen_id="c0-ack", message="m", evidence={}, at=NOW
    )
    for payload in (b"not json", b"[1, 2]", b'{"note": "no by"}', b"\xff\xfe"):
        runner.acknowledge(Incoming(alert_ack_topic("c0-ack", alert.alert_id), payload, 1, False, 1))
    audit = store.audit_for(alert.alert_id)
    assert [(entry["action"], entry["actor"]) for entry in audit[1:]] == [("refused", UNREADABLE)] * 4
    assert store.get(alert.alert_id).state == "open"  # type: ignore[union-attr]


async def test_the_operator_view_survives_anything_published_on_its_topics(
    mosquitto: ManagedMosquitto, uid: str
) -> None:
    """What `shian demo` shows of dead letters and alerts: a non-JSON acknowledgement or alert is not its end."""

    def letter(detail: str) -> bytes:
        return json.dumps(
            {"reason": "bad_topic", "detail": detail, "topic": "x", "client_id": None, "payload_b64": "",
             "received_at": "2026-11-25T11:30:00+08:00"}
        ).encode()  # fmt: skip

    def shown(detail: str) -> bool:
        return any(e["event"] == "deadletter.received" and e.get("detail") == detail for e in logs)

    publisher = LinkOptions(host=mosquitto.host, port=mosquitto.port, client_id=f"pub-{uid}")
    probe = f"shian/v1/deadletter/probe-{uid}"
    options = LinkOptions(host=mosquitto.host, port=mosquitto.port, client_id=f"watch-{uid}")
    with capture_logs() as logs:
        async with MqttLink(publisher) as link:
            await link.publish(probe, letter(f"subscribed-{uid}"), retain=True)  # arrives once it has subscribed
        watcher = asyncio.create_task(watch_operator_topics(options))
        try:
            await eventually(lambda: shown(f"subscribed-{uid}"), what="the watcher subscribed")
            async with MqttLink(publisher) as link:
                await link.publish(alert_ack_topic(f"c-{uid}", "a-1"), b"not json")
                await link.publish(alert_topic(f"c-{uid}", "a-2"), b"not json either")
                await link.publish("shian/v1/deadletter/bad_topic", b"{}")
                await link.publish("shian/v1/deadletter/bad_topic", letter(f"after-{uid}"))  # in order, last
            await eventually(lambda: shown(f"after-{uid}"), what="the watcher read past the unreadable ones")
            assert not watcher.done()
        finally:
            watcher.cancel()
            async with MqttLink(publisher) as link:
                await link.publish(probe, b"", retain=True)
    unreadable = [e["topic"] for e in logs if e["event"] == "operator_topic.unreadable"]
    assert unreadable == [alert_topic(f"c-{uid}", "a-2"), "shian/v1/deadletter/bad_topic"]


def test_help_says_what_each_command_really_does() -> None:
    simulate = " ".join(_shian("simulate", "--help").stdout.split())  # argparse wraps lines
    assert "the registry whose devices to run (default: the generated reference city)" in simulate
    assert "bundled demo" not in simulate
    scenario = _shian("scenario", "run", "--help").stdout
    assert "--registry" not in scenario  # every scenario makes its own canteen
    assert "--data-dir" in scenario


def test_scenario_run_keeps_its_files_in_the_data_dir(tmp_path: Path) -> None:
    scenarios = Path(__file__).resolve().parent.parent / "simulators" / "scenarios"
    data = tmp_path / "scenario-data"
    result = _shian("scenario", "run", str(scenarios / "rodent-seen.yaml"), "--data-dir", str(data))
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(data.glob("spool-gw-*.sqlite"))  # kept, for a look at what the run did
    assert list(data.glob("rules-gw-*.sqlite"))
