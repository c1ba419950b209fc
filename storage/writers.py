"""Write points to a time-series server: InfluxDB's v1 ``/write`` API or its v2 API through influxdb-client.

A writer either succeeds (the server answered 2xx), or raises :class:`TransientWriteError` (try again later:
connection refused, timeout, 5xx, 429) or :class:`PermanentWriteError` (the server will never take this batch:
an unparsable line, a field type conflict). Retrying and dead-lettering are the drain loop's job; the writers
never batch or retry on their own, because influxdb-client's batching mode drops data after its retries.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any, Protocol

import structlog
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from storage.line_protocol import to_line
from storage.schema import StoragePoint

log = structlog.get_logger("shian.storage")


class WriteError(Exception):
    """A write did not happen."""

    pass


class TransientWriteError(WriteError):
    """Try again later: the server is away, overloaded or asked us to wait (``retry_after_s``)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentWriteError(WriteError):
    """The server refused the batch for good; the message is the server's own."""


class _DatabaseMissing(Exception):
    """InfluxDB 1.x answered 404 "database not found"."""


class PointWriter(Protocol):
    """A time-series store the drain can write to."""

    name: str

    def write(self, points: Sequence[StoragePoint]) -> None: ...

    def close(self) -> None: ...


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _classify_status(status: int, body: str, retry_after: str | None) -> WriteError:
    if status == 429 or status >= 500:
        return TransientWriteError(f"HTTP {status}: {body[:500]}", _retry_after(retry_after))
    return PermanentWriteError(f"HTTP {status}: {body[:1000]}")


class _ConnectionDropped(TransientWriteError):
    """InfluxDB closed the connection while the request was still being sent."""


class InfluxV1Writer:
    """``POST /write`` (InfluxDB 1.x, and the v1 compatibility API of 2.x and 3.x)."""

    name = "influxdb1"

    def __init__(
        self,
        url: str,
        database: str,
        *,
        retention_policy: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
        create_database: bool = True,
    ) -> None:
        auth = {"u": username, "p": password or ""} if username else {}
        params = {"db": database, "precision": "ns", **({"rp": retention_policy} if retention_policy else {}), **auth}
        self._url = f"{url.rstrip('/')}/write?{urllib.parse.urlencode(params)}"
        self._query_url = f"{url.rstrip('/')}/query?{urllib.parse.urlencode(auth)}"
        self._database = database
        self._create_database = create_database
        self._timeout_s = timeout_s
        #: Whether a write has gone through: until then a dropped connection may be a missing database.
        self._written = False

    def write(self, points: Sequence[StoragePoint]) -> None:
        self.write_lines([to_line(p) for p in points])

    def write_lines(self, lines: Sequence[str]) -> None:
        body = "\n".join(lines).encode("utf-8")
        try:
            self._post(self._url, body)
        except _ConnectionDropped:
            # InfluxDB answers a write to a missing database at once and closes the connection: a large body still
            # being sent then fails as a broken pipe, never showing the 404. Before any write went through, that
            # is what it may be: the database is created (CREATE DATABASE changes nothing when it exists) and the
            # write sent again; a second drop is transient, as any other.
            if self._written or not self._create_database:
                raise
            self._create()
            self._post(self._url, body)
        except _DatabaseMissing:
            # As Telegraf does: a missing database is created, not a reason to set every record aside.
            if not self._create_database:
                raise TransientWriteError(
                    f"InfluxDB has no database {self._database!r}: create it, or set storage.create_database = true"
                ) from None
            self._create()
            self._post(self._url, body)
        self._written = True

    def _create(self) -> None:
        quoted = self._database.replace("\\", "\\\\").replace('"', '\\"')
        query = urllib.parse.urlencode({"q": f'CREATE DATABASE "{quoted}"'}).encode()
        try:
            self._post(self._query_url, query, content_type="application/x-www-form-urlencoded")
        except PermanentWriteError as exc:  # e.g. an account without the right: retried until an operator acts
            missing = f"InfluxDB has no database {self._database!r} and refused to create it"
            raise TransientWriteError(f"{missing}: {exc}") from None
        log.warning("storage.database_created", database=self._database)

    def _post(self, url: str, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")
            if exc.code == 404 and "database not found" in text:
                raise _DatabaseMissing(text) from None
            raise _classify_status(exc.code, text, exc.headers.get("Retry-After")) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            dropped = isinstance(reason, BrokenPipeError | ConnectionResetError)
            raise (_ConnectionDropped if dropped else TransientWriteError)(f"cannot reach InfluxDB: {exc}") from None

    def close(self) -> None:
        pass


class InfluxV2Writer:
    """``/api/v2/write`` through influxdb-client, synchronously (InfluxDB 2.x, 3.x, Cloud, VictoriaMetrics)."""

    name = "influxdb2"

    def __init__(self, url: str, *, org: str, bucket: str, token: str, timeout_s: float = 10.0) -> None:
        self._client = InfluxDBClient(url=url, token=token, org=org, timeout=int(timeout_s * 1000))
        self._api = self._client.write_api(write_options=SYNCHRONOUS)
        self._bucket = bucket
        self._org = org

    def write(self, points: Sequence[StoragePoint]) -> None:
        self.write_lines([to_line(p) for p in points])

    def write_lines(self, lines: Sequence[str]) -> None:
        try:
            self._api.write(bucket=self._bucket, org=self._org, record=list(lines), write_precision=WritePrecision.NS)  # type: ignore[arg-type]
        except ApiException as exc:
            headers: Any = exc.headers or {}
            raise _classify_status(
                int(exc.status or 0), str(exc.body or exc.reason), headers.get("Retry-After")
            ) from None
        except Exception as exc:  # urllib3 connection errors and timeouts come in many classes
            raise TransientWriteError(f"cannot reach the server: {exc}") from None

    def close(self) -> None:
        self._client.close()
