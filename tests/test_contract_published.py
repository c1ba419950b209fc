"""The published contract: the JSON Schemas and the AsyncAPI document under docs/contract/ are what the code
generates, the examples of docs/contract.md validate against their schemas and are accepted by the gateway on a
real broker, every model instance validates against its schema, and every reference of the AsyncAPI document
resolves."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft202012Validator, FormatChecker

from devices.messages import Receipt, WireModel
from devices.registry import load_registry
from devices.topics import Channel, DeviceKind, DeviceTopic
from gateway.intake import Accepted, Classifier, Rejected
from gateway.service import Gateway
from mqtt.bus import Incoming
from runtime.clock import FakeClock
from shian.cli import main
from shian.commands.contract import documents
from spool import Spool
from tests import strategies as s
from tests.conftest import BusFactory
from tests.helpers import NOW, eventually
from tests.schema_strategies import from_schema
from wiring.settings import BUNDLED_REGISTRY

CONTRACT = Path(__file__).resolve().parent.parent / "docs" / "contract"
EXAMPLES = sorted((CONTRACT / "examples").glob("*.json"))
#: Which device sends each device example, on which channel (the bundled demo registry's devices).
SENDERS = {
    "detector.heartbeat": ("jc-cq-001-det1", DeviceKind.DETECTOR, Channel.TELEMETRY),
    "test.result": ("jc-cq-001-det1", DeviceKind.DETECTOR, Channel.EVENT),
    "delivery.received": ("jc-cq-001-det1", DeviceKind.DETECTOR, Channel.EVENT),
    "cabinet.reading": ("jc-cq-001-cab1", DeviceKind.CABINET, Channel.TELEMETRY),
    "sample.retained": ("jc-cq-001-cab1", DeviceKind.CABINET, Channel.EVENT),
    "sample.disposed": ("jc-cq-001-cab1", DeviceKind.CABINET, Channel.EVENT),
    "camera.stream": ("jc-cq-001-cam1", DeviceKind.CAMERA, Channel.TELEMETRY),
    "ai.violation": ("jc-cq-001-cam1", DeviceKind.CAMERA, Channel.EVENT),
    "device.status": ("jc-cq-001-cam2", DeviceKind.CAMERA, Channel.STATUS),
}


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((CONTRACT / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def test_the_published_files_are_what_the_code_generates() -> None:
    assert main(["contract", "export", str(CONTRACT), "--check"]) == 0  # stale: run `shian contract export`
    assert set(documents()) == {str(p.relative_to(CONTRACT)) for p in CONTRACT.rglob("*.json")} - {
        str(p.relative_to(CONTRACT)) for p in EXAMPLES
    }


def test_a_stale_copy_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contract", "export", str(tmp_path)]) == 0
    (tmp_path / "schemas" / "receipt.schema.json").write_text("{}\n", encoding="utf-8")
    assert main(["contract", "export", str(tmp_path), "--check"]) == 1
    assert "stale: " in capsys.readouterr().out


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_validates_and_stands_in_the_contract_document(example: Path) -> None:
    text = example.read_text(encoding="utf-8")
    errors = list(_validator(example.stem).iter_errors(json.loads(text)))
    assert errors == [], [e.message for e in errors]
    assert f"```json\n{text.rstrip()}\n```" in (CONTRACT.parent / "contract.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["test.result", "receipt"])
def test_a_schema_refuses_what_the_model_refuses(name: str) -> None:
    example = json.loads((CONTRACT / "examples" / f"{name}.json").read_text(encoding="utf-8"))
    validator = _validator(name)
    assert not validator.is_valid({**example, "unknown": 1})  # unknown fields are refused, not dropped
    if name == "test.result":
        assert not validator.is_valid({**example, "ts": "2026-11-25T11:30:00"})  # no offset
        assert not validator.is_valid({**example, "unit": "qualitative"})  # a value with a qualitative unit
        assert not validator.is_valid({**example, "value": 100.5})  # over 100 %
        assert not validator.is_valid({**example, "value": "62.5"})  # a string is not a number


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(s.any_message)
def test_every_model_instance_validates_against_its_schema(case: tuple[DeviceKind, Channel, WireModel]) -> None:
    _, _, model = case
    document = json.loads(model.model_dump_json())
    errors = list(_validator(document["type"]).iter_errors(document))
    assert errors == [], [e.message for e in errors]


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_the_asyncapi_document_is_whole() -> None:
    document = json.loads((CONTRACT / "asyncapi.json").read_text(encoding="utf-8"))
    assert document["asyncapi"] == "3.0.0"
    refs = list(_refs(document))
    assert refs
    for ref in refs:
        if ref.startswith("#/"):
            node: Any = document
            for part in ref[2:].split("/"):
                node = node[part]  # a KeyError names the broken reference
        else:
            assert (CONTRACT / ref).is_file(), ref
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert "shian/v1/{canteen_id}/{kind}/{device_id}/event" in addresses
    event_messages = set(document["channels"]["event"]["messages"])
    assert event_messages == {"test_result", "delivery_received", "sample_retained", "sample_disposed", "ai_violation"}


async def test_the_gateway_accepts_every_device_example(bus: BusFactory, tmp_path: Path) -> None:
    """On the in-memory bus and on the real Mosquitto: every example is stored and answered `stored`."""
    registry = load_registry(BUNDLED_REGISTRY)
    gateway = Gateway(registry, FakeClock(NOW), Spool(tmp_path / "spool.sqlite"), canteens=["jc-cq-001"])
    receipts: list[Receipt] = []
    async with bus.connect("gateway") as gateway_bus, bus.connect("device") as device, bus.connect("watch") as watch:
        await watch.subscribe(["shian/v1/jc-cq-001/+/+/receipt"])

        async def collect() -> None:
            while True:
                batch = await watch.receive(100)
                watch.ack(batch)
                receipts.extend(Receipt.model_validate_json(m.payload, strict=False) for m in batch)

        collector = asyncio.create_task(collect())
        serving = asyncio.create_task(gateway.serve(gateway_bus))
        await eventually(gateway.subscribed.is_set, what="subscribed")
        for name, (device_id, kind, channel) in SENDERS.items():
            payload = (CONTRACT / "examples" / f"{name}.json").read_bytes()
            await device.publish(str(DeviceTopic("jc-cq-001", kind, device_id, channel)), payload, qos=1)
        await eventually(lambda: gateway.stats.received == len(SENDERS), what="every example received")
        await eventually(lambda: len(receipts) == len(SENDERS) - 1, what="a receipt for every record")
        for task in (serving, collector):
            task.cancel()
        await asyncio.gather(serving, collector, return_exceptions=True)
    assert gateway.stats.stored == len(SENDERS)
    assert not gateway.stats.rejected
    assert {r.status for r in receipts} == {"stored"}
    gateway.spool.close()


#: What a schema accepts and the gateway refuses, by the start of the refusal's detail, each for a reason that
#: lies outside the payload's shape; docs/contract.md ("What the schemas do not say") lists the same. Anything
#: else the gateway refuses fails the test.
ACCEPTED_BY_SCHEMA_ONLY = {
    # the schema lists the field (the console's own results carry it); from a device it is refused
    "entered_by: set only by the platform's console": "test.result",
    "entered_by: set only by the platform's console for deliveries": "delivery.received",
}


@pytest.mark.parametrize("name", sorted(SENDERS))
def test_json_a_schema_accepts_is_accepted_by_the_gateway(name: str) -> None:
    """The other direction of the schemas' check: JSON drawn from each device schema (kept when the schema's
    own validator accepts it) goes through the gateway's intake on the sender's topic, and is accepted unless
    the difference is one listed above."""
    schema = json.loads((CONTRACT / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8"))
    validator = _validator(name)
    device, kind, channel = SENDERS[name]
    classify = Classifier(load_registry(BUNDLED_REGISTRY))
    topic = str(DeviceTopic("jc-cq-001", kind, device, channel))
    differences: set[str] = set()

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(from_schema(schema).filter(validator.is_valid))
    def accepted(document: dict[str, Any]) -> None:
        payload = json.dumps(document, ensure_ascii=False).encode()
        decision = classify(Incoming(topic, payload, 1, False, 0))
        if isinstance(decision, Rejected):
            known = sorted((k for k in ACCEPTED_BY_SCHEMA_ONLY if decision.detail.startswith(k)), key=len, reverse=True)
            assert known, f"the schema accepts {document}, the gateway refuses it: {decision.detail}"
            assert ACCEPTED_BY_SCHEMA_ONLY[known[0]] == name
            differences.add(known[0])
        else:
            assert isinstance(decision, Accepted), decision

    accepted()
    if name in ACCEPTED_BY_SCHEMA_ONLY.values():
        # the listed difference is real, and found
        assert differences == {k for k, which in ACCEPTED_BY_SCHEMA_ONLY.items() if which == name}
