"""Records in a spool, as the gateway would have stored them, for the storage tests."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devices.messages import DeviceStatus, WireModel
from devices.topics import Channel, DeviceKind
from gateway.entries import status_msg_id
from spool import NewRecord, Spool, SpoolRecord
from tests.helpers import NOW
from tests.servers import InfluxDB1, http_get


def new_record(
    model: WireModel, kind: DeviceKind, channel: Channel, *, canteen: str, device: str, received_at: dt.datetime = NOW
) -> NewRecord:
    ts: dt.datetime = model.ts  # type: ignore[attr-defined]
    msg_id = status_msg_id(model) if isinstance(model, DeviceStatus) else model.msg_id  # type: ignore[attr-defined]
    return NewRecord(
        device_id=device,
        msg_id=msg_id,
        canteen_id=canteen,
        kind=kind.value,
        channel=channel.value,
        type=model.type,  # type: ignore[attr-defined]
        payload=model.model_dump_json().encode(),
        device_ts=ts,
        received_at=received_at,
    )


def spool_record(record: NewRecord, seq: int) -> SpoolRecord:
    """What the spool would hand a consumer for ``record`` stored as ``seq``."""
    fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    return SpoolRecord(**fields, seq=seq)


def fill_spool(path: Path, records: Sequence[NewRecord]) -> Spool:
    spool = Spool(path)
    spool.commit(records)
    return spool


def influxql(server: InfluxDB1, db: str, query: str) -> list[dict[str, Any]]:
    """Rows of the first series of an InfluxQL answer, as dicts (empty when there are none)."""
    status, body = http_get(f"{server.url}/query?{urllib.parse.urlencode({'db': db, 'q': query})}")
    assert status == 200, body
    result = json.loads(body)["results"][0]
    assert "error" not in result, result
    rows: list[dict[str, Any]] = []
    for series in result.get("series", []):
        for values in series["values"]:
            rows.append({**series.get("tags", {}), **dict(zip(series["columns"], values, strict=True))})
    return rows
