"""Turn a verdict on a delivery into what the spool keeps: a record, a dead letter, or nothing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from devices.messages import DeviceStatus
from gateway.bus import Incoming
from gateway.intake import Accepted, Ignored, Rejected, Verdict
from gateway.spool import NewDeadLetter, NewRecord


@dataclass(frozen=True, kw_only=True)
class SkewLimits:
    """How far a device's ``ts`` may be from the gateway's clock before the record is flagged."""

    future: dt.timedelta = dt.timedelta(minutes=5)
    past: dt.timedelta = dt.timedelta(hours=24)

    def flags(self, device_ts: dt.datetime, received_at: dt.datetime) -> bool:
        return device_ts > received_at + self.future or device_ts < received_at - self.past


def status_msg_id(message: DeviceStatus) -> str:
    """Status messages carry no msg_id on the wire: one status per state and device timestamp."""
    return f"status:{message.state}:{message.ts.isoformat()}"


def spool_entry(
    incoming: Incoming, verdict: Verdict, received_at: dt.datetime, skew: SkewLimits
) -> NewRecord | NewDeadLetter | None:
    match verdict:
        case Accepted(topic=topic, message=message):
            is_status = isinstance(message, DeviceStatus)
            return NewRecord(
                device_id=topic.device_id,
                msg_id=status_msg_id(message) if isinstance(message, DeviceStatus) else message.msg_id,
                canteen_id=topic.canteen_id,
                kind=topic.kind.value,
                channel=topic.channel.value,
                type=message.type,
                topic=incoming.topic,
                payload=incoming.payload,
                device_ts=message.ts,
                received_at=received_at,
                # A last will's ts is stale by nature: never a skew.
                skew_flagged=not is_status and skew.flags(message.ts, received_at),
            )
        case Rejected():
            return NewDeadLetter(
                reason=verdict.reason,
                detail=verdict.detail,
                topic=incoming.topic,
                client_id=verdict.device_id,
                payload=incoming.payload,
                received_at=received_at,
            )
        case Ignored():
            return None
