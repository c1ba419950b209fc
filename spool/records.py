"""What consumers read from the spool: records and dead letters, and the typed message a record holds."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import TypeAdapter

from devices.messages import MODELS_BY_TYPE, DeviceMessage


@dataclass(frozen=True, slots=True)
class NewRecord:
    """A record with its times as datetimes: what a caller hands :meth:`spool.Spool.commit` (the gateway makes
    the stored row, :class:`spool.RecordRow`, directly)."""

    device_id: str
    msg_id: str
    canteen_id: str
    kind: str
    channel: str
    type: str
    payload: bytes
    device_ts: dt.datetime
    received_at: dt.datetime  # the gateway's clock
    skew_flagged: bool = False  # ts outside the gateway's clock-skew limits

    @property
    def skew_s(self) -> float:
        """How far the device's clock is ahead of the gateway's."""
        return (self.device_ts - self.received_at).total_seconds()


@dataclass(frozen=True, slots=True)
class SpoolRecord(NewRecord):
    """A stored record as consumers read it: the record, and its place in the log."""

    seq: int = field(kw_only=True)
    #: Its device had used this msg_id before, for other content; the record was stored all the same.
    msg_id_reused: bool = field(default=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class DownstreamReject:
    """A record a consumer could not take, for good as far as it could tell (the server's own message), and set
    aside so that the rest could go on; replayed once the cause is fixed."""

    id: int
    consumer: str
    seq: int
    detail: str
    item: str  # what was refused (for storage, the line protocol)
    at: dt.datetime
    replayed_at: dt.datetime | None
    replay_note: str | None


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    """A refused message as the spool keeps it, with the result of its last replay."""

    id: int
    reason: str
    detail: str
    topic: str
    client_id: str | None
    payload: bytes
    received_at: dt.datetime
    replayed_at: dt.datetime | None
    replay_note: str | None


#: type -> the pydantic-core validator of exactly that model. The spool holds only payloads the gateway
#: accepted, so a record's ``type`` column names its model: no union to discriminate, no error analysis.
_HYDRATORS: dict[str, Callable[[bytes], DeviceMessage]] = {
    name: TypeAdapter(model).validator.validate_json for name, model in MODELS_BY_TYPE.items()
}


def hydrate(record: SpoolRecord) -> DeviceMessage:
    """The typed message of a stored record: the one way storage and rules turn a record back into the message
    the gateway validated (one JSON parse into the model its ``type`` names)."""
    return _HYDRATORS[record.type](record.payload)
