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


def test_simulated_suppliers_sell_their_trade_and_number_each_deliverys_batches() -> None:
    """A meat wholesaler sells meat; a batch number is its supplier's, its day's and its food's, so the same
    batch reaches every canteen it supplies that day and no two foods share one."""
    import datetime as dt

    from simulators.payloads import _SUPPLIERS, PayloadFactory

    day = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
    tests = [t for n in range(20) for t in (PayloadFactory(f"det{n}").test_result(day) for _ in range(30))]
    for test in tests:
        assert test.food_category in _SUPPLIERS[test.supplier][1], (test.supplier, test.food_category)
    by_batch: dict[str, set[tuple[str, str]]] = {}
    for test in tests:
        by_batch.setdefault(test.batch_no, set()).add((test.supplier, test.sample_name))
    assert all(len(foods) == 1 for foods in by_batch.values())  # one supplier's one food per batch
    assert any(len([t for t in tests if t.batch_no == b]) > 1 for b in by_batch)  # shared across canteens
    detector = PayloadFactory("det-rate")
    failed = sum(1 for _ in range(5000) if detector.test_result(day).result == "fail")
    assert 0 < failed < 5000 * 0.03
