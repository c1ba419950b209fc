"""A console over real stores in a temporary directory: two districts, three canteens, one account of each
kind, alerts raised through the rules store and readings written through the storage schema."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import re
import threading
from pathlib import Path
from typing import Any, NamedTuple

from fastapi.testclient import TestClient

from broker_config.web_passwords import WebPasswords
from console.context import Console, ManualIntake
from console.digest.outbox import DigestOutbox
from console.feed import AlertFeed
from console.readings import LocalReadings
from console.store import ConsoleStore
from console.web.app import create_app
from devices.messages import WireModel
from devices.registry import Registry
from devices.topics import Channel, DeviceKind
from gateway.service import Gateway
from rules.alerts import Alert
from rules.store import RulesStore
from runtime.clock import FakeClock
from simulators.payloads import PayloadFactory
from storage.local import LocalStore
from storage.schema import points_for
from tests.rules_helpers import MORNING
from tests.storage_helpers import new_record, spool_record

#: canteen -> (district, its display name)
CANTEENS = {"c-a": ("城区", "城区一小食堂"), "c-b": ("城区", "城区二小食堂"), "c-c": ("泽州", "泽州中学食堂")}
#: account -> (role, canteen or district)
ACCOUNTS = {
    "school-a": ("school", "c-a"),
    "school-b": ("school", "c-b"),
    "district-cq": ("district", "城区"),
    "district-zz": ("district", "泽州"),
    "city": ("city", None),
}
SEES = {
    "school-a": {"c-a"},
    "school-b": {"c-b"},
    "district-cq": {"c-a", "c-b"},
    "district-zz": {"c-c"},
    "city": {"c-a", "c-b", "c-c"},
}


def password(username: str) -> str:
    return f"pw-{username}-long-enough"


def tenants_registry(
    parent_channels: dict[str, list[dict[str, str]]] | None = None, holidays: list[str] | None = None
) -> Registry:
    accounts: list[dict[str, Any]] = []
    for username, (role, where) in ACCOUNTS.items():
        scope = {"canteen": where} if role == "school" else {"district": where} if role == "district" else {}
        accounts.append({"username": username, "role": role, **scope})
    return Registry.model_validate(
        {
            "region": "jincheng",
            "canteens": [
                {
                    "id": cid,
                    "name": name,
                    "district": district,
                    "type": "primary",
                    "testing_tier": "strips",
                    "meals": [{"meal": "lunch", "start": "11:40", "end": "12:30", "dishes": ["米饭", "青菜"]}],
                    "devices": [
                        {"id": f"{cid}-det", "kind": "detector"},
                        {"id": f"{cid}-cab", "kind": "cabinet"},
                        {"id": f"{cid}-cam", "kind": "camera"},
                    ],
                    "parent_channels": (parent_channels or {}).get(cid, []),
                }
                for cid, (district, name) in CANTEENS.items()
            ],
            "calendar": {"holidays": holidays or []},
            "accounts": accounts,
        }
    )


def write_passwords(path: Path, registry: Registry) -> WebPasswords:
    web = WebPasswords.load(path)
    for account in registry.accounts:
        web.set_password(account.username, password(account.username))
    web.save()
    return web


class ConsoleRig:
    """The console's stores, filled on demand, and a client of its app."""

    def __init__(
        self,
        tmp: Path,
        *,
        manual_intake: ManualIntake | None = None,
        start: dt.datetime = MORNING,
        registry: Registry | None = None,
    ) -> None:
        self.tmp = tmp
        self.clock = FakeClock(start)
        self.registry = registry or tenants_registry()
        self.rules = RulesStore(tmp / "rules.sqlite")
        self.store = LocalStore(tmp / "store.sqlite")
        self.console = Console(
            registry=self.registry,
            clock=self.clock,
            alerts=RulesStore(tmp / "rules.sqlite"),
            readings=LocalReadings(tmp / "store.sqlite"),
            passwords=write_passwords(tmp / "web-passwords.yaml", self.registry),
            store=ConsoleStore(tmp / "console.sqlite"),
            feed=AlertFeed(),
            secret_key="a-test-secret-key-of-at-least-32-characters",
            manual_intake=manual_intake,
            digests=DigestOutbox(tmp / "console.sqlite"),
        )
        self.app = create_app(self.console)
        self.seq = 0
        self.factories: dict[str, PayloadFactory] = {}
        #: Every test result written, as its payload's fields.
        self.tests_written: list[dict[str, Any]] = []

    def client(self, username: str | None = None) -> TestClient:
        client = TestClient(self.app, follow_redirects=False)
        if username is not None:
            login(client, username)
        return client

    def raise_alert(
        self,
        canteen: str,
        rule: str = "test.failed",
        message: str | None = None,
        device: str | None = None,
        **evidence: Any,
    ) -> Alert:
        """An alert as the rules engine raises it; ``device`` and a ``msg_id`` in ``evidence`` name the record
        it is about (:meth:`device_of` names a canteen's devices)."""
        alert, _ = self.rules.raise_alert(
            dedup_key=f"{canteen}|{rule}|{self.seq}",
            rule=rule,
            severity="critical" if rule == "test.failed" else "warning",
            canteen_id=canteen,
            device_id=device,
            message=message or f"{CANTEENS[canteen][1]}：{rule} 告警 {self.seq}",
            evidence={"canteen": canteen, **({"device": device} if device else {}), **evidence},
            at=self.clock.now(),
        )
        self.seq += 1
        return alert

    @staticmethod
    def device_of(canteen: str, kind: DeviceKind = DeviceKind.DETECTOR) -> str:
        return f"{canteen}-{kind.value[:3]}"

    def record(self, canteen: str, kind: DeviceKind, channel: Channel, model: WireModel) -> None:
        """A record as the storage drain would have written it."""
        self.seq += 1
        device = self.device_of(canteen, kind)
        record = spool_record(new_record(model, kind, channel, canteen=canteen, device=device), self.seq)
        self.store.write(points_for(record, CANTEENS[canteen][0]))

    def test_result(self, canteen: str, **changes: Any) -> None:
        self.record_at(self.clock.now(), canteen, **changes)

    def record_at(self, at: dt.datetime, canteen: str, **changes: Any) -> None:
        """A test result of ``canteen``'s detector taken at ``at``, with ``changes`` to its fields."""
        factory = self.factories.setdefault(canteen, PayloadFactory(f"{canteen}-det"))
        model = factory.test_result(at, fail_rate=0.0).model_copy(update=changes)
        self.tests_written.append(model.model_dump(mode="json"))
        self.record(canteen, DeviceKind.DETECTOR, Channel.EVENT, model)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def login(client: TestClient, username: str, secret: str | None = None) -> Any:
    form = client.get("/login")
    return client.post(
        "/login",
        data={"username": username, "password": secret or password(username), "csrf_token": csrf_of(form.text)},
    )


class RecordingServer:
    """An HTTP server that keeps every POST by path; answers 500 to the first ``fail_first`` of a path, and
    200 with a robot's ``errcode`` (refused) to the first ``errcode_first``."""

    def __init__(self, fail_first: dict[str, int] | None = None, errcode_first: dict[str, int] | None = None) -> None:
        self.received: dict[str, list[Any]] = {}
        self.fail_first = dict(fail_first or {})
        self.errcode_first = dict(errcode_first or {})
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                answer = b""
                if outer.fail_first.get(self.path, 0) > 0:
                    outer.fail_first[self.path] -= 1
                    self.send_response(500)
                elif outer.errcode_first.get(self.path, 0) > 0:
                    outer.errcode_first[self.path] -= 1
                    self.send_response(200)
                    answer = b'{"errcode": 93000, "errmsg": "invalid webhook url"}'
                else:
                    outer.received.setdefault(self.path, []).append(json.loads(body))
                    self.send_response(200)
                    answer = b'{"errcode": 0, "errmsg": "ok"}'
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HandEntry(NamedTuple):
    """A console whose hand entry (strip results, deliveries) goes through a real gateway's intake and spool,
    with school-a logged in."""

    gateway: Gateway
    console: Console
    client: TestClient


def hand_entry(tmp: Path, clock: FakeClock | None = None) -> HandEntry:
    from wiring.build import build_gateway
    from wiring.console import build_console, web_passwords_path
    from wiring.settings import Settings

    settings = Settings(data_dir=tmp)
    registry, clock = tenants_registry(), clock or FakeClock(MORNING)
    gateway = build_gateway(settings, registry, clock)
    write_passwords(web_passwords_path(settings), registry)
    console = build_console(settings, registry, clock, AlertFeed(), manual_intake=gateway.submit_manual)
    client = TestClient(create_app(console), follow_redirects=False)
    login(client, "school-a")
    return HandEntry(gateway, console, client)
