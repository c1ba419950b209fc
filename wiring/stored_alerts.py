"""The notifier that writes every alert change to the time-series store: the one place where the rules
engine's output meets storage's schema (the two are peers and never import each other)."""

from __future__ import annotations

import asyncio

from devices.registry import Registry
from rules.alerts import Alert
from storage.schema import alert_point
from storage.writers import PointWriter


class StoredAlerts:
    """Every change of an alert as a point of the ``alert`` measurement."""

    def __init__(self, writer: PointWriter, registry: Registry) -> None:
        self.writer = writer
        self.registry = registry

    async def notify(self, alert: Alert) -> None:
        canteen = self.registry.canteen(alert.canteen_id)
        point = alert_point(
            alert_id=alert.alert_id,
            canteen=alert.canteen_id,
            district=canteen.district if canteen else "unknown",
            rule=alert.rule,
            severity=alert.severity,
            state=alert.state,
            message=alert.message,
            at=alert.updated_at,
        )
        await asyncio.to_thread(self.writer.write, [point])

    async def close(self) -> None:
        self.writer.close()
