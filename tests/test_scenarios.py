"""The shipped scenarios pass against the real platform (Mosquitto, gateway, rules), and a scenario whose
expectation is wrong fails with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker_config.managed import ManagedMosquitto
from shian.cli import main
from simulators.scenario import Scenario, ScenarioRun, load_scenario
from tests.words_check import leftovers

SCENARIOS = sorted((Path(__file__).resolve().parent.parent / "simulators" / "scenarios").glob("*.yaml"))
RULES = {
    "test.failed",
    "test.verdict_mismatch",
    "test.suspect",
    "test.invalid_control",
    "test.followup_missing",
    "test.coverage_missing",
    "sample.missing",
    "sample.underweight",
    "sample.early_disposal",
    "cabinet.temperature",
    "cabinet.door_open",
    "device.offline",
    "canteen.offline",
    "camera.violation",
    "device.clock_skew",
    "supplier.batch_failed",
}


def test_the_shipped_scenarios_cover_every_rule() -> None:
    assert len(SCENARIOS) >= 10
    expected = {want.rule for path in SCENARIOS for want in load_scenario(path).expect}
    assert expected == RULES


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
async def test_shipped_scenario_passes(path: Path, mosquitto: ManagedMosquitto, tmp_path: Path, uid: str) -> None:
    run = ScenarioRun(load_scenario(path), mosquitto.host, mosquitto.port, tmp_path, uid)
    verdict = await run.run()
    assert verdict.ok, "\n".join(verdict.failed)
    assert verdict.passed
    # what the supervisors (and their WeCom groups) read: words, never codes
    names = [c.name for c in run.registry.canteens] + [d.id for c in run.registry.canteens for d in c.devices]
    devices = tuple(names)  # the data's own names: canteens and devices
    for version in run.versions:
        assert leftovers(version["message"], "zh", allow=devices) == [], version["message"]


async def test_a_wrong_expectation_fails_with_a_clear_message(
    mosquitto: ManagedMosquitto, tmp_path: Path, uid: str
) -> None:
    scenario = Scenario.model_validate(
        {
            "name": "wrong",
            "steps": [{"at": "12:35", "send": "sample.retained", "with": {"sample_id": "W-1", "weight_g": 150.0}}],
            "end": "14:00",
            "expect": [
                {"rule": "sample.missing", "severity": "warning", "by": "13:31"},
                {"rule": "sample.underweight"},
            ],
            "expect_not": ["sample.missing"],
        }
    )
    verdict = await ScenarioRun(scenario, mosquitto.host, mosquitto.port, tmp_path, uid).run()
    assert not verdict.ok
    assert verdict.failed[0].startswith("expected sample.missing (warning) by 13:31: found none; alerts raised:")
    assert "sample.missing" in verdict.failed[0]  # it was raised, as critical: the message lists what was
    assert verdict.failed[1].startswith("expected sample.underweight: found none")
    assert verdict.failed[2].startswith("expected no sample.missing: raised — ")


def test_a_step_for_a_canteen_the_scenario_does_not_have_is_refused() -> None:
    with pytest.raises(ValueError, match="beyond canteens: 2"):
        Scenario.model_validate(
            {"name": "x", "canteens": 2, "steps": [{"at": "08:00", "canteen": 3, "send": "test.result"}]}
        )


def test_scenario_cli_names_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps:\n  - {at: '09:00', send: cabinet.explosion}\n")
    assert main(["scenario", "run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err
    assert "steps.0.send" in err
