"""A failed batch is traced forward: ``supplier.batch_failed`` tells every other canteen that recorded the same
supplier's same batch that day — by testing it or by receiving it (``delivery.received``, the receiving ledger) —
to hold that food and test it (退回并溯源). A canteen that records the batch later the same day is told when it
does."""

from __future__ import annotations

from dataclasses import dataclass

from devices.messages import DeliveryReceived, TestResult
from rules.effects import Effect, Raise
from rules.state import Table
from rules.units.base import Observation, RuleContext, RuleUnit
from rules.units.verdict import platform_verdict


@dataclass
class Batch:
    """One supplier's batch on one day: the canteens that recorded it, and where it failed first."""

    canteens: list[str]
    failed_at: str | None = None
    failed_sample: str | None = None


class SuppliersUnit(RuleUnit):
    """``supplier.batch_failed``."""

    def __init__(self, context: RuleContext) -> None:
        super().__init__(context)
        #: "YYYY-MM-DD|supplier|batch" -> the canteens that recorded it that day and where it failed
        self.batches = Table[Batch]("supplier_batches", Batch)

    def on_record(self, seen: Observation) -> list[Effect]:
        test = seen.message
        if isinstance(test, DeliveryReceived):
            return self._received(seen, test)
        if not isinstance(test, TestResult):
            return []
        canteen = seen.record.canteen_id
        day = self.context.local_date(test.ts)
        key = f"{day.isoformat()}|{test.supplier}|{test.batch_no}"
        batch = self.batches.get(key) or Batch([])
        newcomer = canteen not in batch.canteens
        if newcomer:
            batch.canteens.append(canteen)
        failed = "fail" in (test.result, platform_verdict(test, self.config, self.context.registry.catalogue))
        effects: list[Effect] = []
        if failed and batch.failed_at is None:
            batch.failed_at, batch.failed_sample = canteen, test.sample_name
            effects += [self._hold(other, key, batch, seen) for other in batch.canteens if other != canteen]
        elif newcomer and batch.failed_at is not None and batch.failed_at != canteen:
            effects.append(self._hold(canteen, key, batch, seen))  # recorded the batch after it failed elsewhere
        if newcomer or failed:
            self.batches.put(key, batch)
        return effects

    def _received(self, seen: Observation, delivery: DeliveryReceived) -> list[Effect]:
        """A delivery received: the canteen has the batch, tested or not."""
        canteen = seen.record.canteen_id
        key = f"{self.context.local_date(delivery.ts).isoformat()}|{delivery.supplier}|{delivery.batch_no}"
        batch = self.batches.get(key) or Batch([])
        if canteen in batch.canteens:
            return []
        batch.canteens.append(canteen)
        self.batches.put(key, batch)
        if batch.failed_at is not None and batch.failed_at != canteen:
            return [self._hold(canteen, key, batch, seen)]  # received a batch that already failed elsewhere
        return []

    def _hold(self, canteen_id: str, key: str, batch: Batch, seen: Observation) -> Raise:
        test = seen.message
        assert isinstance(test, TestResult | DeliveryReceived)
        failed_at = self.context.registry.canteen(batch.failed_at or "")
        evidence = {**seen.evidence, "supplier": test.supplier, "batch_no": test.batch_no, "failed_at": batch.failed_at}
        params = {
            "supplier": test.supplier,
            "batch_no": test.batch_no,
            "sample_name": batch.failed_sample
            or (test.sample_name if isinstance(test, TestResult) else "、".join(test.foods)),
            "failed_at": failed_at.name if failed_at else batch.failed_at,
        }
        return Raise(
            "supplier.batch_failed",
            "critical",
            f"{key}|{canteen_id}",
            canteen_id,
            test.ts,
            evidence,
            subject=f"{test.supplier} {test.batch_no}",
            params=params,
        )
