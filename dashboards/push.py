"""Upsert the boards into a running Grafana through its HTTP API (grafana-client): the datasource by uid, a
folder by uid, then every dashboard by uid with ``overwrite``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaUnauthorizedError

from dashboards.boards import BOARDS, DATASOURCE_UID
from dashboards.build import FOLDER, board_json
from runtime.errors import ShianError

FOLDER_UID = "shian"


class PushError(ShianError, RuntimeError):
    """Grafana refused; the message says what to fix."""


@dataclass
class PushResult:
    datasource: str = ""
    folder: str = ""
    dashboards: list[str] = field(default_factory=list)


def datasource_body(influx_url: str, database: str, user: str | None, password: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "uid": DATASOURCE_UID,
        "name": "Shian InfluxDB",
        "type": "influxdb",
        "access": "proxy",
        "url": influx_url,
        "jsonData": {"dbName": database, "httpMode": "GET"},
    }
    if user:
        body["user"] = user
        body["secureJsonData"] = {"password": password or ""}
    return body


def _explain(exc: GrafanaException, what: str) -> PushError:
    status = getattr(exc, "status_code", None)
    if isinstance(exc, GrafanaUnauthorizedError) or status == 401:
        return PushError(f"Grafana refused the credentials while {what} (HTTP 401): check the token or user/password")
    if status == 403:
        return PushError(
            f"Grafana says the account may not do this while {what} (HTTP 403): it needs the Editor "
            "role on the folder, and Admin for the datasource"
        )
    return PushError(f"Grafana failed while {what}: {exc}")


def push(
    api: GrafanaApi,
    *,
    influx_url: str,
    database: str,
    influx_user: str | None = None,
    influx_password: str | None = None,
) -> PushResult:
    result = PushResult()
    body = datasource_body(influx_url, database, influx_user, influx_password)
    try:
        try:
            api.datasource.get_datasource_by_uid(DATASOURCE_UID)
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise
            api.datasource.create_datasource(body)
            result.datasource = "created"
        else:
            api.datasource.update_datasource_by_uid(DATASOURCE_UID, body)
            result.datasource = "updated"
    except GrafanaException as exc:
        raise _explain(exc, "creating the datasource") from None
    try:
        try:
            api.folder.get_folder(FOLDER_UID)
            result.folder = "exists"
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise
            api.folder.create_folder(FOLDER, uid=FOLDER_UID)
            result.folder = "created"
    except GrafanaException as exc:
        raise _explain(exc, "creating the folder") from None
    for name in BOARDS:
        board = board_json(name)
        board.pop("id", None)  # upsert by uid: a numeric id from another Grafana must not travel
        try:
            api.dashboard.update_dashboard(
                {"dashboard": board, "folderUid": FOLDER_UID, "overwrite": True, "message": "shian dashboards push"}
            )
        except GrafanaException as exc:
            raise _explain(exc, f"saving the dashboard {board['uid']}") from None
        result.dashboards.append(board["uid"])
    return result
