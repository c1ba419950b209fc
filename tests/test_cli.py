"""The command line: complete help, clear configuration errors, registry checks, and the demo end to end."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from shian.cli import build_parser, main
from wiring.broker import BrokerAddress, gateway_link_options
from wiring.settings import BUNDLED_REGISTRY, ConfigError, load_settings

COMMANDS = [
    [],
    ["run"],
    ["demo"],
    ["registry"],
    ["registry", "check"],
    ["broker"],
    ["broker", "config"],
    ["broker", "provision"],
    ["broker", "reload"],
    ["deadletter"],
    ["deadletter", "list"],
    ["deadletter", "show"],
    ["deadletter", "replay"],
    ["query"],
    ["query", "tests"],
    ["query", "temperatures"],
    ["query", "alerts"],
    ["dashboards"],
    ["dashboards", "build"],
    ["dashboards", "push"],
    ["alerts"],
    ["alerts", "list"],
    ["alerts", "show"],
    ["alerts", "ack"],
    ["alerts", "resolve"],
    ["scenario"],
    ["scenario", "run"],
    ["simulate"],
    ["contract"],
    ["contract", "export"],
    ["storage"],
    ["storage", "rejects"],
    ["storage", "rejects", "list"],
    ["storage", "rejects", "show"],
    ["storage", "rejects", "replay"],
]


@pytest.mark.parametrize("words", COMMANDS, ids=lambda words: " ".join(words) or "shian")
def test_every_command_has_help(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*words, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: shian")
    assert len(out.splitlines()) > 3


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in (
        "run",
        "demo",
        "registry",
        "broker",
        "deadletter",
        "query",
        "dashboards",
        "alerts",
        "scenario",
        "simulate",
    ):
        assert f"    {command}" in out
    assert "SHIAN_" in out


def test_registry_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = Path(__file__).resolve().parent.parent / "wiring" / "demo-registry.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text("region: r\ncanteens:\n  - id: c1\n    name: n\n    district: d\n    type: school\n")
    assert main(["registry", "check", str(good)]) == 0
    assert "ok, 1 canteens, 4 devices" in capsys.readouterr().out
    assert main(["registry", "check", str(good), str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:6: canteens.0.type: Input should be" in err


def test_config_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "shian.toml"
    config.write_text('log_level = "debug"\n[mqtt]\nhost = "broker.local"\nport = 1884\n')
    monkeypatch.setenv("SHIAN_MQTT__PORT", "1999")
    settings = load_settings(config)
    assert settings.log_level == "debug"
    assert settings.mqtt.host == "broker.local"
    assert settings.mqtt.port == 1999  # the environment wins over the file
    assert load_settings(config, log_level="error").log_level == "error"  # and a flag over both


def test_the_gateways_receive_maximum_reaches_its_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "shian.toml"
    config.write_text("")
    assert gateway_link_options(load_settings(config), BrokerAddress("h", 1)).receive_maximum == 8192
    monkeypatch.setenv("SHIAN_GATEWAY__RECEIVE_MAXIMUM", "4096")
    assert gateway_link_options(load_settings(config), BrokerAddress("h", 1)).receive_maximum == 4096


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[mqtt]\nport = 70000\n", {}, r"mqtt\.port \(in .*shian\.toml or \$SHIAN_MQTT__PORT\): Input should be less"),
        ("[mqtt]\nprot = 1\n", {}, r"mqtt\.prot .*Extra inputs"),
        ("[gateway]\ncanteens = ['a/b']\n", {}, r"gateway\.canteens\.0 .*the id rule"),
        ("", {"SHIAN_LOG_LEVEL": "loud"}, r"log_level .*\$SHIAN_LOG_LEVEL"),
        ("[mqtt\n", {}, r"shian\.toml: not valid TOML"),
        ("[storage]\nbackend = 'influxdb2'\nurl = 'http://x'\n", {}, r"storage .*needs storage\.org, storage\.bucket"),
        ("[storage]\nbackend = 'influxdb1'\n", {}, r"storage .*needs storage\.url"),
        ("[gateway]\nreceive_maximum = 70000\n", {}, r"gateway\.receive_maximum .*less than or equal to 65535"),
        ("[gateway]\nreceive_maximum = 3000\n", {}, r"gateway .*receive_maximum \(3000\) must be at least twice"),
    ],
)
def test_configuration_errors_name_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, env: dict[str, str], message: str
) -> None:
    config = tmp_path / "shian.toml"
    config.write_text(text)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=message):
        load_settings(config)


def test_missing_config_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml: configuration file not found" in capsys.readouterr().err


def test_a_spool_from_a_newer_shian_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spool = tmp_path / "spool-shian-gateway.sqlite"
    with sqlite3.connect(spool) as db:
        db.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('schema_version', '4');"
        )
    assert main(["deadletter", "list", "--data-dir", str(tmp_path)]) == 2
    assert f"shian: {spool} is a version 4 spool; this Shian reads up to version 3" in capsys.readouterr().err


def test_help_loads_none_of_the_platform() -> None:
    """`shian --help` and argument errors answer before the platform (pydantic models, MQTT, the rules engine) is
    imported: the command modules import it inside their handlers."""
    heavy = {"devices", "mqtt", "spool", "gateway", "storage", "rules", "wiring", "simulators", "dashboards"}
    heavy |= {"pydantic", "aiomqtt"}
    probe = (
        "import sys; from shian.cli import build_parser; build_parser().format_help(); "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {heavy!r}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_demo_shows_accepted_messages_and_a_dead_letter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What the README promises a new developer: devices publish, messages are counted, the buggy one's
    malformed message reaches the dead-letter topic with its reason. Logs are JSON when not on a terminal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIAN_")} | {"SHIAN_WEB__PORT": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "shian.cli", "demo", "--duration", "7", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    names = [event["event"] for event in events]
    assert "broker.started" in names
    assert "broker.stopped" in names
    assert names.count("device.online") == 4
    final = next(event for event in events if event["event"] == "gateway.stats" and event.get("final"))
    assert final["accepted"] > 10
    assert set(final["accepted_by_type"]) >= {"detector.heartbeat", "cabinet.reading", "camera.stream"}
    dead = [event for event in events if event["event"] == "deadletter.received"]
    assert dead, "the buggy camera's malformed message was not dead-lettered"
    assert dead[0]["reason"] == "invalid_json"
    assert dead[0]["client_id"].endswith("cam2")
    # ... and what was accepted reached the embedded store
    storage = next(event for event in events if event["event"] == "storage.stats" and event.get("final"))
    assert storage["written_records"] == final["stored"]
    assert storage["backlog"] == 0
    assert main(["query", "temperatures", "--data-dir", str(tmp_path)]) == 0
    assert "jc-cq-001-cab1" in capsys.readouterr().out
    # ... and the console's address and a login were printed for the newcomer
    assert re.search(r"控制台 Console: http://127\.0\.0\.1:\d+", result.stderr)
    assert re.search(r"登录 login: school-jc-cq-001  密码 password: \S{8,}", result.stderr)
    assert re.search(r"快检公示屏 Kiosk: http://127\.0\.0\.1:\d+/kiosk/jc-cq-001\?t=\S+", result.stderr)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_stops_everything_broker_included(
    tmp_path: Path, sig: signal.Signals, request: pytest.FixtureRequest
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIAN_")} | {"SHIAN_WEB__PORT": "0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "shian.cli", "demo", "--data-dir", str(tmp_path)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its group (the managed broker too) is ended below if the test fails
    )
    request.addfinalizer(lambda: _end_group(process))
    assert process.stderr is not None
    for line in process.stderr:
        if '"device.online"' in line:
            break
    assert _processes_mentioning(str(tmp_path / "broker")), "the managed broker is not running"
    process.send_signal(sig)
    rest = process.stderr.read()
    assert process.wait(timeout=30) == 0
    assert '"broker.stopped"' in rest
    assert _processes_mentioning(str(tmp_path / "broker")) == []


def _end_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


def _registry_with_accounts(path: Path) -> Path:
    """The bundled demo registry, its canteen renamed c1, with the school's account."""
    data = yaml.safe_load(BUNDLED_REGISTRY.read_text(encoding="utf-8"))
    data["canteens"][0]["id"] = "c1"
    for device in data["canteens"][0]["devices"]:
        device["id"] = device["id"].replace("jc-cq-001", "c1")
    data["canteens"][0]["kiosk_camera"] = data["canteens"][0]["kiosk_camera"].replace("jc-cq-001", "c1")
    data["accounts"] = [{"username": "school-c1", "role": "school", "canteen": "c1"}]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_alerts_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rules.store import RulesStore

    at = dt.datetime(2026, 11, 25, 3, 30, tzinfo=dt.UTC)
    store = RulesStore(tmp_path / "rules-shian-gateway.sqlite")
    alert, _ = store.raise_alert(
        dedup_key="k",
        rule="sample.missing",
        severity="critical",
        canteen_id="c1",
        message="午餐留样不足",
        evidence={"kept": 1},
        at=at,
    )
    store.close()
    args = ["--data-dir", str(tmp_path), "--registry", str(_registry_with_accounts(tmp_path / "registry.yaml"))]
    assert main(["alerts", "list", *args]) == 0
    out = capsys.readouterr().out
    assert f"{alert.alert_id}\t" in out
    assert "\t2026-11-25T11:30:00+08:00\t" in out  # the registry's time zone, with its offset: not "03:30Z"
    # --by is an account checked against the registry, as over MQTT; a person without one is an --operator
    assert main(["alerts", "ack", alert.alert_id, "--by", "nobody", *args]) == 2
    assert "'nobody' is not a registry account that may handle alerts of c1" in capsys.readouterr().err
    assert main(["alerts", "ack", alert.alert_id, "--by", "school-c1", "--note", "已补留样", *args]) == 0
    assert capsys.readouterr().out.strip() == "acknowledged"
    assert main(["alerts", "ack", alert.alert_id, "--by", "school-c1", *args]) == 1
    assert "is acknowledged, not open" in capsys.readouterr().err
    assert main(["alerts", "resolve", alert.alert_id, "--operator", "王工", "--why", "补齐", *args]) == 0
    capsys.readouterr()
    assert main(["alerts", "show", alert.alert_id, *args]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [entry["action"] for entry in shown["audit"]] == ["opened", "acknowledged", "resolved"]
    assert [entry["actor"] for entry in shown["audit"][1:]] == ["school-c1", "operator:王工"]


def test_alerts_list_pages_and_says_how_many_there_are(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rules.store import RulesStore

    store = RulesStore(tmp_path / "rules-shian-gateway.sqlite")
    at = dt.datetime(2026, 11, 25, 3, 30, tzinfo=dt.UTC)
    for n in range(1205):
        store.raise_alert(
            dedup_key=f"k{n}",
            rule="camera.violation",
            severity="warning",
            canteen_id="c1",
            message="m",
            evidence={"n": n},
            at=at,
        )
    assert store.count("open") == 1205  # exact, past the 1,000 a listing used to stop at
    store.close()
    args = ["--data-dir", str(tmp_path)]
    assert main(["alerts", "list", "--state", "open", "--limit", "1000", *args]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1000
    assert "showing 1-1000 of 1,205 alerts" in captured.err
    assert main(["alerts", "list", "--limit", "1000", "--offset", "1000", *args]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 205
    assert "showing 1001-1205 of 1,205 alerts" in captured.err
