"""Records in a spool, as the gateway would have stored them, and an HTTP server with scripted answers, for the
storage tests."""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import json
import threading
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devices.messages import DeviceStatus, WireModel
from devices.topics import Channel, DeviceKind
from gateway.entries import status_msg_id
from simulators.payloads import PayloadFactory
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


def cabinet_records(uid: str, count: int, start: dt.datetime = NOW) -> list[NewRecord]:
    """``count`` readings of one cabinet, a millisecond apart."""
    factory = PayloadFactory(f"cabinet0-{uid}")
    return [
        new_record(
            factory.cabinet_reading(start + dt.timedelta(milliseconds=i), samples_held=1),
            DeviceKind.CABINET,
            Channel.TELEMETRY,
            canteen=f"c0-{uid}",
            device=f"cabinet0-{uid}",
            received_at=start + dt.timedelta(milliseconds=i),
        )
        for i in range(count)
    ]


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


class ScriptedInflux:
    """An HTTP server that answers /write with a scripted list of (status, headers, body)."""

    def __init__(self, answers: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.answers = answers
        self.bodies: list[bytes] = []
        self.keep_bodies = True
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body_in = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.keep_bodies:
                    outer.bodies.append(body_in)
                status, headers, body = outer.answers.pop(0) if outer.answers else (204, {}, b"")
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
