"""Turn a decision on a delivery into what the spool keeps: a record, a dead letter, or nothing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from devices.messages import DeviceStatus
from gateway.intake import Accepted, Decision, Rejected
from mqtt.bus import Incoming
from spool import NewDeadLetter, RecordRow, SpoolEntry, utc_offset_s


@dataclass(frozen=True, kw_only=True)
class SkewLimits:
    """How far a device's ``ts`` may be from the gateway's clock before the record is flagged."""

    future: dt.timedelta = dt.timedelta(minutes=5)
    past: dt.timedelta = dt.timedelta(hours=24)

    def window(self, received_at: dt.datetime) -> SkewWindow:
        epoch = received_at.timestamp()
        return SkewWindow(received_at, epoch, epoch - self.past.total_seconds(), epoch + self.future.total_seconds())


@dataclass(frozen=True, slots=True)
class SkewWindow:
    """The limits of :class:`SkewLimits` around one receive time, worked out once per batch, in Unix seconds
    (comparing aware datetimes costs an offset lookup on each side)."""

    received_at: dt.datetime
    received_epoch: float
    earliest: float
    latest: float


def status_msg_id(message: DeviceStatus) -> str:
    """Status messages carry no msg_id on the wire: one status per state and device timestamp."""
    return f"status:{message.state}:{message.ts.isoformat()}"


def spool_entry(incoming: Incoming, decision: Decision, window: SkewWindow) -> SpoolEntry:
    # isinstance rather than match: this runs for every delivery, and a class pattern costs more.
    if isinstance(decision, Accepted):
        route, message = decision
        ts = message.ts
        device_epoch = ts.timestamp()
        if isinstance(message, DeviceStatus):
            msg_id, skewed = status_msg_id(message), False  # a last will's ts is stale by nature: never a skew
        else:
            msg_id, skewed = message.msg_id, not window.earliest <= device_epoch <= window.latest  # outside: flag
        # tuple.__new__: a named tuple's own constructor is a Python function of thirteen arguments
        return tuple.__new__(
            RecordRow,
            (
                route.device_id,
                msg_id,
                route.canteen_id,
                route.kind,
                route.channel,
                message.type,
                incoming.payload,
                device_epoch,
                utc_offset_s(ts),
                window.received_epoch,
                int(skewed),
                0,  # msg_id_reused: the commit decides
            ),
        )
    if isinstance(decision, Rejected):
        return NewDeadLetter(
            reason=decision.reason,
            detail=decision.detail,
            topic=incoming.topic,
            client_id=decision.device_id,
            payload=incoming.payload,
            received_at=window.received_at,
        )
    return None
