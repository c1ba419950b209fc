"""Realistic payloads for simulated devices, built from the wire models so they always match the contract."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import time

from devices.messages import (
    AiViolation,
    CabinetReading,
    CameraStream,
    DeliveryReceived,
    DetectorHeartbeat,
    DeviceStatus,
    SampleDisposed,
    SampleRetained,
    TestResult,
)

# (sample name, category, item code, method, standard, unit)
_TESTS = [
    ("小白菜", "vegetable", "pesticide.op_carbamate", "enzyme_inhibition", "GB/T 5009.199-2003", "%"),
    ("菠菜", "vegetable", "pesticide.op_carbamate", "enzyme_inhibition", "GB/T 5009.199-2003", "%"),
    ("豇豆", "vegetable", "pesticide.op_carbamate", "enzyme_inhibition", "GB/T 5009.199-2003", "%"),
    ("苹果", "fruit", "pesticide.op_carbamate", "enzyme_inhibition", "NY/T 448-2001", "%"),
    ("猪肉", "meat", "vetdrug.clenbuterol", "colloidal_gold", "GB/T 5009.192-2003", "qualitative"),
]
#: Each supplier with its code (the prefix of its batch numbers) and what its trade is: a meat wholesaler sells
#: meat, a vegetable distributor vegetables and fruit.
_SUPPLIERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "晋城市绿源蔬菜配送有限公司": ("LY", ("vegetable", "fruit")),
    "泽州县丰收农产品合作社": ("FS", ("vegetable", "fruit")),
    "高平市鲜达肉类批发部": ("XD", ("meat",)),
}
_OPERATORS = ["王芳", "李军", "张丽"]


class PayloadFactory:
    """Makes the payloads of one device, with unique message ids and a seeded random source."""

    def __init__(self, device_id: str, seed: int = 0, *, boot: str | None = None) -> None:
        self.device_id = device_id
        self.random = random.Random(f"{device_id}:{seed}")
        self._counter = itertools.count(1)
        # A live device's ids carry the moment it started: the contract forbids a counter that starts again
        # after a restart (a reused id is stored as another record, but joins by id go wrong). Seeded, replayable
        # runs (history, scenarios) keep plain counters.
        self._prefix = f"{device_id[: 64 - 22]}-{boot}" if boot else device_id

    def msg_id(self) -> str:
        return f"{self._prefix}-{next(self._counter):08d}"

    def status(self, state: str, now: dt.datetime) -> DeviceStatus:
        return DeviceStatus(type="device.status", state=state, ts=now)  # type: ignore[arg-type]

    def detector_heartbeat(self, now: dt.datetime) -> DetectorHeartbeat:
        return DetectorHeartbeat(
            type="detector.heartbeat",
            msg_id=self.msg_id(),
            ts=now,
            state="idle",
            incubator_c=round(37 + self.random.uniform(-0.3, 0.3), 2),
            reagent_lot="RG20261101",
            reagent_expires=dt.date(2027, 5, 1),
        )

    def test_result(self, now: dt.datetime, fail_rate: float = 0.01) -> TestResult:
        index = self.random.randrange(len(_TESTS))
        name, category, item, method, std, unit = _TESTS[index]
        supplier = self.random.choice([s for s, (_, trade) in _SUPPLIERS.items() if category in trade])
        failed = self.random.random() < fail_rate
        value: float | None
        if unit == "%":
            threshold = 70.0 if std.startswith("NY/T") else 50.0  # a failure the platform agrees with
            value = round(self.random.uniform(threshold, 90) if failed else self.random.uniform(3, 35), 1)
        else:
            value = None
        return TestResult(
            type="test.result",
            msg_id=self.msg_id(),
            ts=now,
            sample_no=f"S{now:%Y%m%d}-{self.random.randrange(1000):03d}",
            sample_name=name,
            food_category=category,  # type: ignore[arg-type]
            supplier=supplier,
            # one batch per supplier, day's delivery and food: the same batch reaches every canteen it supplies
            batch_no=f"{_SUPPLIERS[supplier][0]}{now:%Y%m%d}-{index + 1:02d}",
            item_code=item,
            method=method,  # type: ignore[arg-type]
            method_std=std,
            value=value,
            unit=unit,  # type: ignore[arg-type]
            result="fail" if failed else "pass",
            operator=self.random.choice(_OPERATORS),
            control_delta_a=round(self.random.uniform(0.4, 0.8), 3) if method == "enzyme_inhibition" else None,
        )

    def deliveries(self, now: dt.datetime) -> list[DeliveryReceived]:
        """The morning's deliveries, one per supplier, each with the batches of its trade that the day's tests
        name (``test_result``'s batch numbers): the receiving ledger the tests can be traced through."""
        out = []
        for supplier, (code, trade) in _SUPPLIERS.items():
            foods = [(i, t[0]) for i, t in enumerate(_TESTS) if t[1] in trade]
            for index, food in foods:
                out.append(
                    DeliveryReceived(
                        type="delivery.received",
                        msg_id=self.msg_id(),
                        ts=now,
                        supplier=supplier,
                        batch_no=f"{code}{now:%Y%m%d}-{index + 1:02d}",
                        foods=[food],
                        food_category=_TESTS[index][1],  # type: ignore[arg-type]
                        quantity_kg=round(self.random.uniform(5, 40), 1),
                        received_by=self.random.choice(_OPERATORS),
                    )
                )
        return out

    def cabinet_reading(self, now: dt.datetime, samples_held: int) -> CabinetReading:
        door_open = self.random.random() < 0.05
        return CabinetReading(
            type="cabinet.reading",
            msg_id=self.msg_id(),
            ts=now,
            temp_c=round(self.random.gauss(4.0, 0.6) + (2.5 if door_open else 0.0), 2),
            door_open=door_open,
            power_ok=True,
            samples_held=samples_held,
        )

    def sample_retained(self, now: dt.datetime, meal: str, dish: str, slot: int) -> SampleRetained:
        return SampleRetained(
            type="sample.retained",
            msg_id=self.msg_id(),
            ts=now,
            sample_id=f"{self.device_id}-{now:%Y%m%d}-{meal}-{slot:02d}",
            slot=f"A{slot:02d}",
            meal_date=now.date(),
            meal=meal,  # type: ignore[arg-type]
            dish_name=dish,
            weight_g=round(self.random.uniform(125, 200), 1),
            operator=self.random.choice(_OPERATORS),
        )

    def sample_disposed(self, now: dt.datetime, sample_id: str) -> SampleDisposed:
        return SampleDisposed(
            type="sample.disposed",
            msg_id=self.msg_id(),
            ts=now,
            sample_id=sample_id,
            operator=self.random.choice(_OPERATORS),
            reason="留样期满48小时",
        )

    def camera_stream(self, now: dt.datetime) -> CameraStream:
        return CameraStream(
            type="camera.stream",
            msg_id=self.msg_id(),
            ts=now,
            fps=25.0,
            bitrate_kbps=round(self.random.uniform(1800, 2200), 0),
            recording_ok=True,
            retention_days=30,
        )

    def ai_violation(self, now: dt.datetime) -> AiViolation:
        violation = self.random.choice(["no_mask", "no_hat", "phone", "bin_open"])
        msg_id = self.msg_id()
        return AiViolation(
            type="ai.violation",
            msg_id=msg_id,
            ts=now,
            violation=violation,  # type: ignore[arg-type]
            confidence=round(self.random.uniform(0.6, 0.99), 2),
            area=self.random.choice(["prep", "cooking", "serving"]),
            snapshot_url=f"https://video.example.invalid/snap/{msg_id}.jpg",
        )


def boot_stamp() -> str:
    """This run's start, for the msg_ids of simulated devices that run live (hex milliseconds: a restart is a new
    stamp)."""
    return f"{time.time_ns() // 1_000_000:x}"
