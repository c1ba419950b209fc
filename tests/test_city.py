"""The generated reference city matches the issue's figures and is a valid registry."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml

from devices.registry import Registry, load_registry
from devices.topics import DeviceKind
from shian.cli import main
from simulators.city import generate_city


def test_the_reference_city() -> None:
    registry = Registry.model_validate(generate_city())
    schools = [c for c in registry.canteens if c.type != "supplier"]
    assert len(schools) == 456
    assert len(registry.canteens) - len(schools) == 3
    assert Counter(c.testing_tier for c in schools) == {"lab": 109, "strips": 238, "none": 109}
    assert {c.district for c in registry.canteens} == {"城区", "泽州县", "高平市", "阳城县", "陵川县", "沁水县"}
    assert {c.type for c in schools} == {"kindergarten", "primary", "middle"}
    kinds = Counter(d.kind for c in registry.canteens for d in c.devices)
    assert kinds[DeviceKind.CABINET] == len(registry.canteens)  # every canteen keeps samples
    assert kinds[DeviceKind.DETECTOR] == 347 + 3
    assert 4500 <= sum(kinds.values()) <= 5500
    assert all(sum(d.kind is DeviceKind.CAMERA for d in c.devices) >= 3 for c in registry.canteens)
    assert generate_city() == generate_city()  # reproducible


def test_simulate_writes_the_registry(tmp_path: Path) -> None:
    out = tmp_path / "city.yaml"
    assert main(["simulate", "--generate-registry", str(out)]) == 0
    registry = load_registry(out)
    assert len(registry.canteens) == 459
    assert yaml.safe_load(out.read_text())["region"] == "jincheng"
