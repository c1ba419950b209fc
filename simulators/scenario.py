"""Scenarios: YAML files that describe a situation and the alerts it must (and must not) raise.

A scenario runs one canteen through the real pipeline — devices publish over MQTT, the gateway validates and
spools, the rules engine raises alerts, which are read back from the alerts topic — on a simulated clock that the
runner moves from step to step, so a day's deadlines take a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from devices.messages import DeviceStatus, WireModel
from devices.registry import Registry
from devices.topics import ALERTS_SUBSCRIPTION, Channel, DeviceKind, DeviceTopic
from gateway.runner import run_gateway
from gateway.service import Gateway
from mqtt.device_link import MqttLink
from mqtt.link_options import LinkOptions
from rules.config import RulesConfig
from rules.runner import RulesRunner
from runtime.clock import FakeClock
from runtime.errors import ShianError
from shian_device import Device, DeviceConfig
from simulators.payloads import PayloadFactory
from wiring.broker import BrokerAddress, gateway_link_options
from wiring.build import build_gateway, build_rules
from wiring.settings import GatewaySettings, MqttSettings, Settings

MessageKind = Literal[
    "detector.heartbeat",
    "test.result",
    "cabinet.reading",
    "sample.retained",
    "sample.disposed",
    "camera.stream",
    "ai.violation",
    "status.online",
    "status.offline",
]
#: Which scenario device sends which message, on which channel.
SENDERS: dict[str, tuple[str, DeviceKind, Channel]] = {
    "detector.heartbeat": ("detector", DeviceKind.DETECTOR, Channel.TELEMETRY),
    "test.result": ("detector", DeviceKind.DETECTOR, Channel.EVENT),
    "cabinet.reading": ("cabinet", DeviceKind.CABINET, Channel.TELEMETRY),
    "sample.retained": ("cabinet", DeviceKind.CABINET, Channel.EVENT),
    "sample.disposed": ("cabinet", DeviceKind.CABINET, Channel.EVENT),
    "camera.stream": ("camera", DeviceKind.CAMERA, Channel.TELEMETRY),
    "ai.violation": ("camera", DeviceKind.CAMERA, Channel.EVENT),
}
DISHES = ["米饭", "番茄炒蛋", "清炒白菜"]


class ScenarioError(ShianError, ValueError):
    pass


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Local time (HH:MM[:SS]) on the scenario's day, or a day offset "+1 08:00".
    at: str
    send: MessageKind | None = None
    #: Which device sends it when a kind has several (``status.*``): detector, cabinet or camera.
    device: Literal["detector", "cabinet", "camera"] | None = None
    #: Which of the scenario's canteens sends it (1 to ``canteens``).
    canteen: int = Field(default=1, ge=1)
    #: Field values over the realistic defaults.
    fields: dict[str, Any] = Field(default_factory=dict, alias="with")
    #: Repeat every N seconds until ``until`` (a local time).
    every_s: float | None = Field(default=None, gt=0)
    until: str | None = None


class Expectation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: str
    severity: Literal["info", "warning", "critical"] | None = None
    #: The alert must be open by this local time.
    by: str | None = None
    count: int | None = Field(default=None, ge=1)
    #: Only alerts of this canteen (1 to ``canteens``); none: of any.
    canteen: int | None = Field(default=None, ge=1)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    #: The scenario's day (a school day unless it says otherwise) and its time zone.
    date: dt.date = dt.date(2026, 11, 25)
    timezone: str = "Asia/Shanghai"
    holiday: bool = False
    testing_tier: Literal["lab", "strips", "none"] = "lab"
    start: str = "07:00"
    end: str = "18:00"
    steps: list[Step] = Field(default_factory=list)
    #: How many canteens the scenario runs (the same registry entry each, in one district), e.g. to trace one
    #: supplier's batch across them.
    canteens: int = Field(default=1, ge=1, le=20)
    expect: list[Expectation] = Field(default_factory=list)
    #: Rules that must not be raised at all, or (``rule@N``) not at canteen N.
    expect_not: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _canteens_exist(self) -> Scenario:
        named = [s.canteen for s in self.steps] + [e.canteen for e in self.expect if e.canteen is not None]
        named += [int(rule.split("@", 1)[1]) for rule in self.expect_not if "@" in rule]
        if any(n > self.canteens for n in named):
            raise ValueError(f"a step or expectation names a canteen beyond canteens: {self.canteens}")
        return self


def load_scenario(path: Path) -> Scenario:
    try:
        return Scenario.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise ScenarioError(f"{path}: {problems}") from None


@dataclass
class ScenarioResult:
    """What a scenario run found: each expectation met or not, in words."""

    scenario: str
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def _default_model(kind: str, f: PayloadFactory, now: dt.datetime) -> WireModel:
    """A realistic message of ``kind``; the scenario's ``with`` overrides its fields."""
    if kind == "detector.heartbeat":
        return f.detector_heartbeat(now)
    if kind == "test.result":
        return f.test_result(now, fail_rate=0.0)
    if kind == "cabinet.reading":
        return f.cabinet_reading(now, samples_held=3)
    if kind == "sample.retained":
        return f.sample_retained(now, "lunch", DISHES[0], 1)
    if kind == "sample.disposed":
        return f.sample_disposed(now, "unset")
    if kind == "camera.stream":
        return f.camera_stream(now)
    return f.ai_violation(now)


class ScenarioRun:
    """One scenario on a broker, with its own canteen id so that runs never see each other's messages."""

    def __init__(self, scenario: Scenario, host: str, port: int, workdir: Path, run_id: str) -> None:
        self.scenario = scenario
        self.host, self.port = host, port
        self.workdir = workdir
        self.tz = ZoneInfo(scenario.timezone)
        #: The scenario's canteens by number (1 first); canteen 1's ids are those of a one-canteen scenario.
        self.canteens = {n: f"scn-{run_id}" + (f"-c{n}" if n > 1 else "") for n in range(1, scenario.canteens + 1)}
        self.canteen = self.canteens[1]
        self.devices = {
            (n, role): f"{role}-{run_id}" + (f"-c{n}" if n > 1 else "")
            for n in self.canteens
            for role in ("detector", "cabinet", "camera")
        }
        self.clock = FakeClock(self.local(scenario.start))
        self.registry = self._registry()
        self.factories = {key: PayloadFactory(device) for key, device in self.devices.items()}
        #: Every version of every alert published during the run, in arrival order.
        self.versions: list[dict[str, Any]] = []

    def local(self, text: str) -> dt.datetime:
        days = 0
        if text.startswith("+"):
            offset, text = text[1:].split(" ", 1)
            days = int(offset)
        return dt.datetime.combine(self.scenario.date + dt.timedelta(days=days), dt.time.fromisoformat(text), self.tz)

    def _registry(self) -> Registry:
        s = self.scenario
        return Registry.model_validate(
            {
                "region": "scenario",
                "timezone": s.timezone,
                "calendar": {"holidays": [s.date.isoformat()] if s.holiday else []},
                "canteens": [
                    {
                        "id": canteen_id,
                        "name": f"情景食堂 {s.name}" + (f" {n}" if n > 1 else ""),
                        "district": "城区",
                        "type": "primary",
                        "testing_tier": s.testing_tier,
                        "meals": [{"meal": "lunch", "start": "11:40", "end": "12:30", "dishes": DISHES}],
                        "devices": [
                            {"id": self.devices[(n, "detector")], "kind": "detector", "heartbeat_s": 600},
                            {"id": self.devices[(n, "cabinet")], "kind": "cabinet", "heartbeat_s": 300},
                            {"id": self.devices[(n, "camera")], "kind": "camera", "heartbeat_s": 120},
                        ],
                    }
                    for n, canteen_id in self.canteens.items()
                ],
            }
        )

    def _message(self, step: Step, now: dt.datetime) -> tuple[str, WireModel]:
        kind = step.send
        assert kind is not None
        if kind.startswith("status."):
            device = step.device or "camera"
            return device, self.factories[(step.canteen, device)].status(kind.split(".", 1)[1], now)
        role = SENDERS[kind][0]
        model = _default_model(kind, self.factories[(step.canteen, role)], now)
        update = dict(step.fields)
        if "meal_date" not in update and kind == "sample.retained":
            update["meal_date"] = now.astimezone(self.tz).date()
        # Validated like any payload, so a scenario's values are checked (and ``ts`` strings become instants).
        return role, type(model).model_validate({**model.model_dump(), **update}, strict=False)

    def _schedule(self) -> list[tuple[dt.datetime, Step]]:
        timeline = []
        for step in self.scenario.steps:
            at = self.local(step.at)
            if step.every_s and step.until:
                end = self.local(step.until)
                while at <= end:
                    timeline.append((at, step))
                    at += dt.timedelta(seconds=step.every_s)
            else:
                timeline.append((at, step))
        return sorted(timeline, key=lambda item: item[0])

    def settings(self) -> Settings:
        """The platform's configuration for this run: its own gateway identity, owning only this canteen."""
        return Settings(
            data_dir=self.workdir,
            mqtt=MqttSettings(host=self.host, port=self.port, session_expiry_s=600),
            gateway=GatewaySettings(client_id=f"gw-{self.canteen}", canteens=list(self.canteens.values())),
        )

    async def run(self) -> ScenarioResult:
        """The gateway and the rules engine as the platform builds them, stepped by hand: each step's record is
        applied before the clock moves on, so a deadline never races the message that meets it."""
        settings = self.settings()
        gateway = build_gateway(settings, self.registry, self.clock)
        options = gateway_link_options(settings, BrokerAddress(self.host, self.port))
        gateway_task = asyncio.create_task(run_gateway(gateway, options))
        await asyncio.wait_for(gateway.subscribed.wait(), 10)
        runner, alerts_topic = build_rules(settings, self.registry, self.clock, config=RulesConfig())
        try:
            async with (
                MqttLink(LinkOptions(host=self.host, port=self.port, client_id=f"rules-{self.canteen}")) as rules_link,
                MqttLink(LinkOptions(host=self.host, port=self.port, client_id=f"watch-{self.canteen}")) as watch,
                contextlib.AsyncExitStack() as stack,
            ):
                alerts_topic.bus = rules_link
                await watch.subscribe([f"{ALERTS_SUBSCRIPTION[:-2]}/{c}/#" for c in self.canteens.values()])
                watcher = asyncio.create_task(self._watch(watch))
                devices = {key: await stack.enter_async_context(self._device(key)) for key in self.devices}
                await self._online(devices, gateway)
                await self._play(devices, gateway, runner)
                await rules_link.sync()
                await watch.sync()
                await asyncio.sleep(0.1)
                watcher.cancel()
            await self._clear_statuses()
        finally:
            gateway.request_stop()
            await asyncio.wait([gateway_task], timeout=10)
            gateway.spool.close()
            await runner.close()
        return self.judge()

    async def _clear_statuses(self) -> None:
        """The devices' retained ``offline`` removed: a scenario leaves nothing behind on a shared broker."""
        options = LinkOptions(host=self.host, port=self.port, client_id=f"clear-{self.canteen}")
        async with MqttLink(options) as link:
            for (number, role), device_id in self.devices.items():
                topic = DeviceTopic(self.canteens[number], DeviceKind(role), device_id, Channel.STATUS)
                await link.publish(str(topic), b"", retain=True)

    def _device(self, key: tuple[int, str]) -> Device:
        """A scenario device on the device SDK (its outbox in the run's directory), stamping the scenario's time."""
        number, role = key
        config = DeviceConfig(
            self.canteens[number],
            DeviceKind(role),
            self.devices[key],
            self.host,
            self.port,
            state_dir=self.workdir / "devices",
        )
        return Device(config, clock=self.clock.now)

    async def _online(self, devices: dict[tuple[int, str], Device], gateway: Gateway) -> None:
        """Until every device is connected and the gateway has its ``online``: no step races a status."""
        async with asyncio.timeout(10):
            for device in devices.values():
                await device.connected.wait()
            while gateway.stats.received < len(devices):  # noqa: ASYNC110 (the gateway's counters have no event)
                await asyncio.sleep(0.005)

    async def _play(self, devices: dict[tuple[int, str], Device], gateway: Gateway, runner: RulesRunner) -> None:
        """Every step at its time, then the clock walked to the end a minute at a time, so every timer fires."""
        for at, step in self._schedule():
            self.clock.set(max(at, self.clock.now()))
            if step.send:
                role, model = self._message(step, self.clock.now())
                device = devices[(step.canteen, role)]
                if isinstance(model, DeviceStatus):
                    await device.send_status(model.state)
                else:
                    fields = model.model_dump(exclude={"type", "msg_id"}, exclude_none=True)
                    await getattr(device, f"send_{step.send.replace('.', '_')}")(**fields)
                await self._settle(gateway, runner)
            await runner.step()
        end = self.local(self.scenario.end)
        while self.clock.now() < end:
            self.clock.set(min(end, self.clock.now() + dt.timedelta(minutes=1)))
            await runner.step()

    async def _settle(self, gateway: Gateway, runner: RulesRunner) -> None:
        """Until the gateway has stored what was sent (the spool's last record has grown)."""
        target = gateway.stats.received + 1
        for _ in range(500):
            if gateway.stats.received >= target:
                break
            await asyncio.sleep(0.005)
        await runner.step()

    async def _watch(self, link: MqttLink) -> None:
        async for incoming in link.messages():
            if incoming.payload:
                self.versions.append(json.loads(incoming.payload))

    def judge(self) -> ScenarioResult:
        """Each expectation against every published version of every alert: a warning that became critical
        satisfies both "warning by 11:11" and "critical by 11:31"."""
        result = ScenarioResult(self.scenario.name)
        seen = sorted({v["rule"] for v in self.versions})
        for want in self.scenario.expect:
            matching = [
                v
                for v in self.versions
                if v["rule"] == want.rule
                and (want.severity is None or v["severity"] == want.severity)
                and (want.canteen is None or v["canteen_id"] == self.canteens[want.canteen])
            ]
            if want.by:
                deadline = self.local(want.by)
                matching = [v for v in matching if dt.datetime.fromisoformat(v["updated_at"]) <= deadline]
            alerts = {v["alert_id"] for v in matching}
            what = want.rule + (f" ({want.severity})" if want.severity else "") + (f" by {want.by}" if want.by else "")
            what += f" at canteen {want.canteen}" if want.canteen else ""
            if not alerts or (want.count is not None and len(alerts) != want.count):
                count = f" x{want.count}" if want.count else ""
                result.failed.append(
                    f"expected {what}{count}: found {len(alerts) or 'none'}; alerts raised: {', '.join(seen) or 'none'}"
                )
            else:
                result.passed.append(f"raised {what}")
        for unwanted in self.scenario.expect_not:
            rule, _, number = unwanted.partition("@")
            where = self.canteens[int(number)] if number else None
            raised = [v for v in self.versions if v["rule"] == rule and where in (None, v["canteen_id"])]
            at = f" at canteen {number}" if number else ""
            if raised:
                result.failed.append(f"expected no {rule}{at}: raised — {raised[0]['message']}")
            else:
                result.passed.append(f"no {rule}{at}")
        return result


async def run_scenarios(paths: list[Path], host: str, port: int, workdir: Path) -> list[ScenarioResult]:
    results = []
    for n, path in enumerate(paths):
        scenario = load_scenario(path)
        run_id = f"{path.stem[:40]}-{n}-{dt.datetime.now(dt.UTC):%H%M%S%f}"
        results.append(await ScenarioRun(scenario, host, port, workdir, run_id.replace(".", "-")).run())
    return results
