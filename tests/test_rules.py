"""Every rule of docs/rules.md at its boundaries, with a fake clock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from devices.topics import Channel, DeviceKind
from rules.config import RulesConfig, RulesConfigError, load_rules
from tests.rules_helpers import MORNING, Harness
from tests.storage_helpers import new_record, spool_record

M = dt.timedelta(minutes=1)
S = dt.timedelta(seconds=1)


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


@pytest.mark.parametrize(
    ("value", "std", "rules"),
    [
        (50.0, "GB/T 5009.199-2003", {"test.failed", "test.verdict_mismatch"}),  # exactly 50 % is positive
        (49.9, "GB/T 5009.199-2003", {"test.suspect", "test.verdict_mismatch"}),
        (39.9, "GB/T 5009.199-2003", set()),
        (70.0, "NY/T 448-2001", {"test.failed", "test.verdict_mismatch"}),
        (69.9, "NY/T 448-2001", {"test.suspect", "test.verdict_mismatch"}),  # 50-70 is not positive under NY/T 448
        (55.0, "NY/T 448-2001", {"test.suspect", "test.verdict_mismatch"}),
    ],
)
def test_the_platform_recomputes_the_verdict(h: Harness, value: float, std: str, rules: set[str]) -> None:
    h.test(value, std=std, result="pass")  # the device says pass every time
    assert {a.rule for a in h.alerts()} == rules


def test_a_failed_test_is_critical_and_the_device_verdict_is_not_trusted(h: Harness) -> None:
    h.test(62.0, result="fail")
    (failed,) = h.alerts("test.failed")
    assert failed.severity == "critical"
    assert "不合格" in failed.message  # Chinese by default
    assert h.alerts("test.verdict_mismatch") == []  # device and platform agree
    h.test(12.0, result="fail", sample_no="S2")  # the device says fail: a missing pass is never a pass
    assert len(h.alerts("test.failed")) == 2


def test_an_inactive_control_voids_the_run(h: Harness) -> None:
    h.test(80.0, delta_a=0.29, result="fail")
    assert {a.rule for a in h.alerts()} == {"test.invalid_control"}
    h.test(20.0, delta_a=0.3, sample_no="S2")
    assert {a.rule for a in h.alerts()} == {"test.invalid_control"}


def test_a_failed_sample_must_be_retested_within_four_hours(h: Harness) -> None:
    h.test(62.0, result="fail", sample_no="S1")
    h.after(4 * 60 * M - S)
    assert h.alerts("test.followup_missing") == []
    h.after(S)
    (missing,) = h.alerts("test.followup_missing")
    assert missing.severity == "critical"
    # a retest after the deadline closes it
    h.test(10.0, sample_no="S1-R", retest_of="S1")
    assert h.alerts("test.followup_missing", "resolved")


def test_a_retest_in_time_raises_nothing(h: Harness) -> None:
    h.test(62.0, result="fail", sample_no="S1")
    h.after(3 * 60 * M)
    h.test(10.0, sample_no="S1-R", retest_of="S1")
    h.after(2 * 60 * M)
    assert h.alerts("test.followup_missing") == []


def test_coverage_deadline_on_school_days_only(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.at(MORNING.replace(hour=10, minute=29))
    assert h.alerts("test.coverage_missing") == []
    h.at(MORNING.replace(hour=10, minute=30))
    assert len(h.alerts("test.coverage_missing")) == 1
    # Thursday: tested at 9:00, nothing at 10:30
    h.at(MORNING + dt.timedelta(days=1, hours=1))
    h.test(10.0, sample_no="T1")
    h.at(MORNING.replace(hour=10, minute=31) + dt.timedelta(days=1))
    assert len(h.alerts("test.coverage_missing")) == 1
    # Friday is a holiday: no coverage alert
    h.at(MORNING.replace(hour=11) + dt.timedelta(days=2))
    assert len(h.alerts("test.coverage_missing")) == 1


@pytest.mark.parametrize(("weight", "alert"), [(125.0, False), (124.9, True)])
def test_sample_weight(h: Harness, weight: float, alert: bool) -> None:
    sample = h.factories["cab1"].sample_retained(h.clock.now(), "lunch", "米饭", 1)
    h.feed(sample.model_copy(update={"weight_g": weight}), DeviceKind.CABINET, Channel.EVENT, "cab1")
    assert bool(h.alerts("sample.underweight")) is alert


@pytest.mark.parametrize(("held", "alert"), [(47 * 60 + 59, True), (48 * 60, False)])
def test_early_disposal(h: Harness, held: int, alert: bool) -> None:
    sample = h.factories["cab1"].sample_retained(h.clock.now(), "lunch", "米饭", 1)
    h.feed(sample, DeviceKind.CABINET, Channel.EVENT, "cab1")
    h.clock.set(h.clock.now() + held * M)
    disposal = h.factories["cab1"].sample_disposed(h.clock.now(), sample.sample_id)
    h.feed(disposal, DeviceKind.CABINET, Channel.EVENT, "cab1")
    assert bool(h.alerts("sample.early_disposal")) is alert


def _lunch_samples(h: Harness, dishes: list[str]) -> None:
    for slot, dish in enumerate(dishes, 1):
        h.feed(
            h.factories["cab1"].sample_retained(h.clock.now(), "lunch", dish, slot),
            DeviceKind.CABINET,
            Channel.EVENT,
            "cab1",
        )


def test_lunch_without_every_sample_raises_once_its_deadline_passes(h: Harness) -> None:
    h.at(MORNING.replace(hour=12, minute=40))
    _lunch_samples(h, ["米饭", "青菜"])  # the menu lists three dishes
    h.at(MORNING.replace(hour=13, minute=29, second=59))
    assert h.alerts("sample.missing") == []
    h.at(MORNING.replace(hour=13, minute=30))
    (missing,) = h.alerts("sample.missing")
    assert missing.severity == "critical"
    h.after(M)
    assert len(h.alerts("sample.missing")) == 1


def test_a_menu_for_tomorrow_changes_what_tomorrow_expects_and_nothing_today(h: Harness) -> None:
    tomorrow = MORNING.date() + dt.timedelta(days=1)
    h.store.menus.set("c1", [(tomorrow, "lunch", ["米饭", "青菜", "番茄炒蛋", "红烧鱼"])], "school-c1", MORNING)
    h.at(MORNING.replace(hour=12, minute=40))
    _lunch_samples(h, ["米饭", "青菜", "番茄炒蛋"])  # today: the registry's three dishes, all kept
    h.at(MORNING.replace(hour=14))
    assert h.alerts("sample.missing") == []
    h.at(MORNING.replace(hour=12, minute=40) + dt.timedelta(days=1))
    _lunch_samples(h, ["米饭", "青菜", "番茄炒蛋"])  # tomorrow the menu has a fourth dish
    h.at(MORNING.replace(hour=14) + dt.timedelta(days=1))
    (missing,) = h.alerts("sample.missing")
    assert missing.evidence[0]["dishes"] == 4
    assert missing.evidence[0]["menu"] == ["米饭", "青菜", "番茄炒蛋", "红烧鱼"]
    assert "少于菜单上的 4 道菜" in missing.message


def test_a_complete_lunch_raises_nothing(h: Harness) -> None:
    h.at(MORNING.replace(hour=12, minute=40))
    _lunch_samples(h, ["米饭", "青菜", "番茄炒蛋"])
    h.at(MORNING.replace(hour=14))
    assert h.alerts("sample.missing") == []


def test_the_deadline_survives_a_restart_and_fires_exactly_once(h: Harness) -> None:
    h.at(MORNING.replace(hour=12, minute=35))  # lunch has ended; its deadline is 13:30
    h.restart()
    h.at(MORNING.replace(hour=13, minute=31))
    h.restart()
    h.at(MORNING.replace(hour=13, minute=40))
    assert len(h.alerts("sample.missing")) == 1


def test_cabinet_temperature_boundaries(h: Harness) -> None:
    h.reading(8.0)
    h.after(20 * M)
    assert h.alerts("cabinet.temperature") == []  # 8.0 °C is in range
    h.reading(8.1)
    h.after(10 * M - S)
    h.reading(8.1)
    assert h.alerts("cabinet.temperature") == []  # 9 min 59 s
    h.after(S)
    (alert,) = h.alerts("cabinet.temperature")
    assert alert.severity == "warning"
    h.after(20 * M)
    (alert,) = h.alerts("cabinet.temperature")
    assert alert.severity == "critical"  # 30 min out of range
    h.reading(5.0)
    h.after(5 * M - S)
    assert h.alerts("cabinet.temperature", "open")
    h.after(S)
    assert h.alerts("cabinet.temperature", "resolved")  # 5 min back in range


def test_door_open_for_five_minutes(h: Harness) -> None:
    h.reading(4.0, door_open=True)
    h.after(5 * M - S)
    assert h.alerts("cabinet.door_open") == []
    h.after(S)
    assert h.alerts("cabinet.door_open", "open")
    h.reading(4.0)
    assert h.alerts("cabinet.door_open", "resolved")


def test_offline_by_status_and_by_silence(h: Harness) -> None:
    h.at(MORNING.replace(hour=11))  # kitchen hours for cameras (lunch at 11:40)
    for device, kind in (("det1", DeviceKind.DETECTOR), ("cab1", DeviceKind.CABINET), ("cam1", DeviceKind.CAMERA)):
        h.feed(h.factories[device].status("online", h.clock.now()), kind, Channel.STATUS, device)
    h.feed(h.factories["cab1"].status("offline", h.clock.now()), DeviceKind.CABINET, Channel.STATUS, "cab1")
    assert [a.device_id for a in h.alerts("device.offline")] == ["cab1"]
    h.after(60 * S)
    h.feed(h.factories["det1"].detector_heartbeat(h.clock.now()), DeviceKind.DETECTOR, Channel.TELEMETRY, "det1")
    h.after(30 * S)  # camera heartbeat 30 s: silent for 3 intervals, while the detector beats on
    assert {a.device_id for a in h.alerts("device.offline", "open")} == {"cab1", "cam1"}
    h.feed(h.factories["cam1"].camera_stream(h.clock.now()), DeviceKind.CAMERA, Channel.TELEMETRY, "cam1")
    assert {a.device_id for a in h.alerts("device.offline", "open")} == {"cab1"}


def test_cameras_are_not_missed_outside_kitchen_hours(h: Harness) -> None:
    h.at(MORNING.replace(hour=20))
    h.after(60 * M)
    (canteen,) = h.alerts("canteen.offline")  # the detector and the cabinet, silent together
    assert canteen.evidence[0]["devices"] == ["det1", "cab1"]  # but not the camera
    assert h.alerts("device.offline") == []


def test_camera_violations_need_confidence_and_repeat_into_one_alert(h: Harness) -> None:
    event = h.factories["cam1"].ai_violation(h.clock.now()).model_copy(update={"violation": "rodent"})
    h.feed(event.model_copy(update={"confidence": 0.79}), DeviceKind.CAMERA, Channel.EVENT, "cam1")
    assert h.alerts("camera.violation") == []
    h.feed(event.model_copy(update={"confidence": 0.8, "msg_id": "v2"}), DeviceKind.CAMERA, Channel.EVENT, "cam1")
    h.after(5 * M)
    h.feed(event.model_copy(update={"confidence": 0.95, "msg_id": "v3"}), DeviceKind.CAMERA, Channel.EVENT, "cam1")
    (alert,) = h.alerts("camera.violation")
    assert len(alert.evidence) == 2


def test_clock_skew(h: Harness) -> None:
    h.feed(
        h.factories["cab1"].cabinet_reading(h.clock.now(), samples_held=1),
        DeviceKind.CABINET,
        Channel.TELEMETRY,
        "cab1",
        skew_flagged=True,
    )
    assert h.alerts("device.clock_skew")


def test_unacknowledged_critical_alerts_escalate(h: Harness) -> None:
    h.test(62.0, result="fail")
    (alert,) = h.alerts("test.failed")
    h.after(29 * M)
    assert h.store.get(alert.alert_id).escalation == "school"  # type: ignore[union-attr]
    h.after(M)
    assert h.store.get(alert.alert_id).escalation == "district"  # type: ignore[union-attr]
    h.after(30 * M)
    assert h.store.get(alert.alert_id).escalation == "city"  # type: ignore[union-attr]
    audit = [entry["action"] for entry in h.store.audit_for(alert.alert_id)]
    # each half hour unacknowledged: up one level, and a reminder to everyone told so far
    assert audit == ["opened", "escalated", "reminded", "escalated", "reminded"]


def test_english_and_region_overrides(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("defaults:\n  language: en\nregions:\n  jincheng:\n    sample_min_weight_g: 150\n")
    config = load_rules(rules, "jincheng")
    assert config.sample_min_weight_g == 150
    h = Harness(tmp_path, config=config)
    sample = h.factories["cab1"].sample_retained(h.clock.now(), "lunch", "米饭", 1)
    h.feed(sample.model_copy(update={"weight_g": 140.0}), DeviceKind.CABINET, Channel.EVENT, "cab1")
    (alert,) = h.alerts("sample.underweight")
    assert "under 150" in alert.message
    # a region the registry does not have is an error, not overrides that silently apply nowhere
    with pytest.raises(RulesConfigError, match=r"regions 'jincheng' match no region .*region is 'elsewhere'"):
        load_rules(rules, "elsewhere")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("defaults:\n  sample_min_weight_g: -1\n", r"sample_min_weight_g: Input should be greater than 0"),
        ("defaults:\n  cabinet_min_c: 9\n", r"cabinet_min_c must be below cabinet_max_c"),
        ("defaults:\n  temperature_warning_afterr: 5\n", r"temperature_warning_afterr: Extra inputs"),
        ("defaults:\n  suspect_from_pct: 60\n", r"suspect_from_pct \(60.0\) must be below every threshold"),
        ("defaults: [\n", r"not valid YAML"),
    ],
)
def test_rules_file_errors(tmp_path: Path, text: str, message: str) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(text)
    with pytest.raises(RulesConfigError, match=message):
        load_rules(rules, "jincheng")


def test_defaults_without_a_file() -> None:
    assert load_rules(None, "any") == RulesConfig()


def test_a_cameras_silence_counts_from_the_kitchens_opening(h: Harness) -> None:
    """Quiet overnight is no outage: at 09:40 (two hours before lunch) the camera has 90 s before it is missed."""
    h.feed(h.factories["cam1"].camera_stream(h.clock.now()), DeviceKind.CAMERA, Channel.TELEMETRY, "cam1")  # 08:00
    h.at(MORNING.replace(hour=9, minute=40, second=1))
    assert "cam1" not in {a.device_id for a in h.alerts("device.offline")}
    h.at(MORNING.replace(hour=9, minute=41, second=0))
    h.feed(h.factories["det1"].detector_heartbeat(h.clock.now()), DeviceKind.DETECTOR, Channel.TELEMETRY, "det1")
    h.at(MORNING.replace(hour=9, minute=41, second=30))
    assert "cam1" in {a.device_id for a in h.alerts("device.offline")}


def test_an_engine_far_behind_calls_no_device_silent_whose_records_wait_in_the_spool(tmp_path: Path) -> None:
    """Silence is judged at the engine's watermark, not the clock: an engine started an hour behind the spool
    reads a detector's hour of heartbeats in batches and never calls it offline on the way."""
    h = Harness(tmp_path, start=MORNING)
    det = h.factories["det1"]
    records = []
    for n in range(120):  # a heartbeat every 30 s from 08:00 to 09:00
        at = MORNING + dt.timedelta(seconds=30 * n)
        record = new_record(
            det.detector_heartbeat(at),
            DeviceKind.DETECTOR,
            Channel.TELEMETRY,
            canteen="c1",
            device="det1",
            received_at=at,
        )
        records.append(spool_record(record, n + 1))
    h.clock.set(MORNING + dt.timedelta(hours=1))  # the engine starts at 09:00 with all of it unread
    for start in range(0, len(records), 10):
        batch = records[start : start + 10]
        h.engine.process(batch, caught_up=batch[-1] is records[-1])
    detector = [a for a in h.alerts("device.offline") if a.device_id == "det1"]
    assert detector == []  # not even raised and resolved again
    assert {a.device_id for a in h.alerts("device.offline")} == {"cab1"}  # the cabinet did fall silent
    h.after(dt.timedelta(minutes=10))  # caught up: the detector's real silence still counts
    # (not a canteen.offline: the cabinet fell silent an hour before the detector, not together with it)
    assert sorted(str(a.device_id) for a in h.alerts("device.offline", state="open")) == ["cab1", "det1"]


def test_a_rules_store_made_before_the_inbox_columns_gains_them(tmp_path: Path) -> None:
    """A store of an earlier version (alerts with their body only) opens with the columns the console and the
    escalation read by index, filled from the bodies."""
    import sqlite3

    from rules.alerts import Alert, AlertQuery
    from rules.store import RulesStore

    alert = Alert(
        alert_id="a1",
        rule="test.failed",
        severity="critical",
        state="open",
        canteen_id="c1",
        message="m",
        evidence=[],
        opened_at=MORNING,
        updated_at=MORNING,
        dedup_key="k1",
    )
    db = sqlite3.connect(tmp_path / "rules.sqlite")
    db.execute(
        "CREATE TABLE alerts (alert_id TEXT PRIMARY KEY, dedup_key TEXT NOT NULL, body TEXT NOT NULL,"
        " state TEXT NOT NULL, version TEXT NOT NULL)"
    )
    db.execute("INSERT INTO alerts VALUES ('a1', 'k1', ?, 'open', 'v')", (alert.model_dump_json(),))
    db.commit()
    db.close()
    store = RulesStore(tmp_path / "rules.sqlite")
    found, total = store.search(AlertQuery(canteens=frozenset(["c1"]), rule="test.failed", opened_from=MORNING))
    assert (total, [a.alert_id for a in found]) == (1, ["a1"])
    assert [a.alert_id for a in store.escalation_candidates(MORNING + dt.timedelta(hours=1))] == ["a1"]


def test_escalation_reaches_an_old_alert_behind_a_thousand_newer_ones(tmp_path: Path) -> None:
    """Escalation once read "the open alerts" a page of 1,000 at a time and never saw the rest."""
    from rules.escalation import escalate

    h = Harness(tmp_path)
    oldest, _ = h.store.raise_alert(
        dedup_key="old",
        rule="test.failed",
        severity="critical",
        canteen_id="c1",
        message="m",
        evidence={},
        at=MORNING,
    )
    with h.store.transaction():
        for i in range(1200):
            h.store.raise_alert(
                dedup_key=f"new|{i}",
                rule="test.failed",
                severity="critical",
                canteen_id="c1",
                message="m",
                evidence={},
                at=MORNING + dt.timedelta(minutes=50),
            )
    escalate(h.store, h.config, MORNING + h.config.escalate_after[0] + S)
    escalated = h.store.get(oldest.alert_id)
    assert escalated is not None
    assert escalated.escalation == "district"


# --- storm control -------------------------------------------------------------------------------------------


class Fleet:
    """Canteens of a detector, a cabinet and a camera each, all beating until told otherwise."""

    KINDS = (("det", DeviceKind.DETECTOR, 60), ("cab", DeviceKind.CABINET, 60), ("cam", DeviceKind.CAMERA, 30))

    def __init__(self, tmp: Path, canteens: int) -> None:
        from devices.registry import Registry
        from rules.engine import RulesEngine
        from rules.store import RulesStore
        from runtime.clock import FakeClock
        from simulators.payloads import PayloadFactory

        lunch = {"meal": "lunch", "start": "11:40", "end": "12:30", "dishes": ["米饭"]}
        self.registry = Registry.model_validate(
            {
                "region": "storm",
                "canteens": [
                    {
                        "id": f"s{i}",
                        "name": f"食堂{i}",
                        "district": "城区",
                        "type": "primary",
                        "meals": [lunch],
                        "devices": [{"id": f"{k}{i}", "kind": kind, "heartbeat_s": hb} for k, kind, hb in self.KINDS],
                    }
                    for i in range(canteens)
                ],
            }
        )
        self.clock = FakeClock(MORNING.replace(hour=10))  # kitchen hours: cameras count
        self.store = RulesStore(tmp / "rules.sqlite")
        self.engine = RulesEngine(self.registry, RulesConfig(), self.store, self.clock)
        self.factories = {d.id: PayloadFactory(d.id) for c in self.registry.canteens for d in c.devices}
        self.seq = 0

    def beat(self, devices: list[str]) -> None:
        now, records = self.clock.now(), []
        for device in devices:
            self.seq += 1
            kind, canteen = device[:3], f"s{device[3:]}"
            factory = self.factories[device]
            model, dk = {
                "det": (factory.detector_heartbeat(now), DeviceKind.DETECTOR),
                "cab": (factory.cabinet_reading(now, samples_held=1), DeviceKind.CABINET),
                "cam": (factory.camera_stream(now), DeviceKind.CAMERA),
            }[kind]
            record = new_record(model, dk, Channel.TELEMETRY, canteen=canteen, device=device, received_at=now)
            records.append(spool_record(record, self.seq))
        self.engine.process(records)

    def run(self, minutes: float, beating: list[str]) -> None:
        """Time passes in 30 s steps; ``beating`` devices send at each."""
        for _ in range(int(minutes * 2)):
            self.clock.advance(30 * S)
            self.beat(beating)
            self.engine.tick()

    def devices(self, canteens: range) -> list[str]:
        return [f"{k}{i}" for i in canteens for k, _, _ in self.KINDS]

    def alerts(self, rule: str, state: str | None = None) -> list[Any]:
        return [a for a in self.store.alerts(limit=10_000) if a.rule == rule and (state is None or a.state == state)]


def test_a_canteens_network_dies_one_canteen_offline_not_one_per_device(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, canteens=3)
    fleet.run(5, fleet.devices(range(3)))
    fleet.run(10, fleet.devices(range(1, 3)))  # canteen s0 goes dark: camera (90 s) first, then the rest (180 s)
    (dark,) = fleet.alerts("canteen.offline")
    assert dark.canteen_id == "s0"
    assert dark.evidence[0]["devices"] == ["det0", "cab0", "cam0"]
    assert fleet.alerts("device.offline") == []  # none raised on the way, not even the camera's
    fleet.run(5, ["cab0", *fleet.devices(range(1, 3))])  # its cabinet comes back on its own
    assert fleet.alerts("canteen.offline", "open") == []
    assert sorted(str(a.device_id) for a in fleet.alerts("device.offline", "open")) == ["cam0", "det0"]


def test_a_fleet_wide_outage_is_one_mass_offline_and_no_storm(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, canteens=30)  # 90 devices
    everyone = fleet.devices(range(30))
    fleet.run(5, everyone)
    fleet.run(5, fleet.devices(range(10)))  # the network of two thirds of the city drops at once
    (outage,) = fleet.alerts("platform.mass_offline")
    assert outage.canteen_id == "platform"
    assert outage.severity == "critical"
    assert fleet.alerts("canteen.offline") == []
    assert fleet.alerts("device.offline") == []
    late = {"cam27"}  # still reconnecting when the rest are back
    never = {"det29", "cab29", "cam29", "cam28"}
    back = [d for d in everyone if d not in never | late]
    fleet.run(1, back)  # it comes back, but for one canteen and two cameras
    assert fleet.alerts("platform.mass_offline", "open") == []
    assert fleet.alerts("device.offline") == fleet.alerts("canteen.offline") == []  # a threshold's grace first
    fleet.run(5, back + sorted(late))  # the late camera makes it within its grace
    assert [a.canteen_id for a in fleet.alerts("canteen.offline")] == ["s29"]
    assert [a.device_id for a in fleet.alerts("device.offline")] == ["cam28"]


def test_the_engines_lag_is_measured_and_past_its_bound_alerted(tmp_path: Path) -> None:
    """Records waiting five minutes in the spool: the runner says how far behind it is, raises
    platform.rules_lag while it is behind by more than a minute, and clears it once caught up for a minute."""
    import asyncio

    from rules.runner import RulesRunner
    from spool import Spool

    h = Harness(tmp_path)
    spool = Spool(tmp_path / "spool.sqlite")
    waiting = MORNING - dt.timedelta(minutes=5)
    det = h.factories["det1"]
    spool.commit(
        [
            new_record(
                det.detector_heartbeat(waiting),
                DeviceKind.DETECTOR,
                Channel.TELEMETRY,
                canteen="c1",
                device="det1",
                received_at=waiting,
            )
            for _ in range(30)
        ]
    )
    runner = RulesRunner(h.engine, spool, [], batch=10)
    asyncio.run(runner.step())
    assert (runner.stats.applied, runner.stats.lag_records) == (10, 20)
    assert runner.stats.lag_s == pytest.approx(300.0)
    (lag,) = h.alerts("platform.rules_lag", "open")
    assert lag.canteen_id == "platform"
    assert "20 条记录" in lag.message
    asyncio.run(runner.step())
    asyncio.run(runner.step())
    assert (runner.stats.lag_records, runner.stats.lag_s) == (0, 0.0)
    assert len(h.alerts("platform.rules_lag", "open")) == 1  # caught up, but a lag that comes and goes is one alert
    h.clock.advance(dt.timedelta(minutes=1))
    asyncio.run(runner.step())
    assert h.alerts("platform.rules_lag", "open") == []
    assert len(h.alerts("platform.rules_lag", "resolved")) == 1


def test_a_failed_batch_is_traced_to_every_canteen_that_recorded_it_that_day(tmp_path: Path) -> None:
    """Batch B of supplier S fails at canteen 1; canteens 2 and 3 tested B that morning and are told to hold it;
    canteen 4, supplied by S with another batch, is not; canteen 5 records B after the failure and is told then."""
    from devices.registry import Registry
    from rules.engine import RulesEngine
    from rules.store import RulesStore
    from runtime.clock import FakeClock
    from simulators.payloads import PayloadFactory

    registry = Registry.model_validate(
        {
            "region": "trace",
            "canteens": [
                {
                    "id": f"k{i}",
                    "name": f"食堂{i}",
                    "district": "城区" if i < 3 else "泽州",
                    "type": "primary",
                    "devices": [{"id": f"det{i}", "kind": "detector"}],
                }
                for i in range(1, 6)
            ],
        }
    )
    store = RulesStore(tmp_path / "rules.sqlite")
    engine = RulesEngine(registry, RulesConfig(), store, FakeClock(MORNING))
    seq = 0

    def test(canteen: int, batch: str, result: str, value: float, minutes: int) -> None:
        nonlocal seq
        seq += 1
        at = MORNING + dt.timedelta(minutes=minutes)
        model = (
            PayloadFactory(f"det{canteen}")
            .test_result(at, fail_rate=0.0)
            .model_copy(
                update={
                    "supplier": "丰收合作社",
                    "batch_no": batch,
                    "result": result,
                    "value": value,
                    "unit": "%",
                    "method": "enzyme_inhibition",
                    "method_std": "GB/T 5009.199-2003",
                    "item_code": "pesticide.op_carbamate",
                }
            )
        )
        record = new_record(model, DeviceKind.DETECTOR, Channel.EVENT, canteen=f"k{canteen}", device=f"det{canteen}")
        engine.process([spool_record(record, seq)])

    test(2, "B", "pass", 12.0, 0)
    test(3, "B", "pass", 15.0, 5)
    test(4, "C", "pass", 10.0, 6)
    test(1, "B", "fail", 68.0, 30)
    held = {a.canteen_id: a for a in store.alerts() if a.rule == "supplier.batch_failed"}
    assert set(held) == {"k2", "k3"}
    assert held["k2"].severity == "critical"
    assert "丰收合作社 进货批号 B" in held["k2"].message
    assert "已在食堂1检测不合格" in held["k2"].message
    test(5, "B", "pass", 11.0, 60)  # recorded after the failure
    test(2, "B", "pass", 9.0, 70)  # a second test at canteen 2: no second alert
    assert sorted(a.canteen_id for a in store.alerts() if a.rule == "supplier.batch_failed") == ["k2", "k3", "k5"]
