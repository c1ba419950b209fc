"""Benchmark: the console's inbox over many alerts, and its live feed to many browsers.

1. A rules store with --alerts alerts (default 100,000) over the reference city's canteens; a district account
   asks the inbox for filtered pages (state, rule, a week). Prints the server's time per page (its
   Server-Timing header), median and p90, and as a ratio to a static file served by the same server.
2. --clients event streams (default 200) logged in as the city; one alert change is notified the way the rules
   engine notifies it; prints how long until every stream has it, next to the same with one stream.

    .venv/bin/python -m benchmarks.console [--alerts 100000] [--clients 200]

Server and clients share this process and its event loop, so the feed figures include the clients' own work.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import statistics
import tempfile
import time
from pathlib import Path

import httpx2

from console.context import Console
from console.feed import AlertFeed
from console.readings import LocalReadings
from console.store import ConsoleStore
from console.web.app import create_app
from console.web.server import ConsoleServer
from devices.registry import Registry
from rules.store import RulesStore
from runtime.clock import SystemClock
from simulators.city import generate_city
from tests.console_helpers import password, write_passwords

RULES = ["device.offline", "test.failed", "sample.missing", "cabinet.temperature", "camera.violation"]


def _registry() -> Registry:
    """The reference city, with a city and a district account for the benchmark."""
    city = generate_city()
    district = city["canteens"][0]["district"]
    city["accounts"] = [
        *city.get("accounts", []),
        {"username": "bench-city", "role": "city"},
        {"username": "bench-district", "role": "district", "district": district},
    ]
    return Registry.model_validate(city)


def _fill(store: RulesStore, registry: Registry, count: int) -> None:
    canteens = [c.id for c in registry.canteens]
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    with store.transaction():
        for i in range(count):
            rule = RULES[i % len(RULES)]
            alert, _ = store.raise_alert(
                dedup_key=f"bench|{i}",
                rule=rule,
                severity="critical" if rule == "test.failed" else "warning",
                canteen_id=canteens[i % len(canteens)],
                message=f"基准告警 {i}",
                evidence={"i": i},
                at=start + dt.timedelta(seconds=i * 25),
            )
            if i % 3 == 0:
                store.resolve(alert.alert_id, "bench", "bench", alert.opened_at)


async def _login(client: httpx2.AsyncClient, username: str) -> None:
    form = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    data = {"username": username, "password": password(username), "csrf_token": token[1]}
    response = await client.post("/login", data=data)
    assert response.status_code == 303, response.text


def _server_ms(response: httpx2.Response) -> float:
    return float(response.headers["server-timing"].split("dur=")[1])


async def _inbox(base: str, rounds: int) -> tuple[dict[str, list[float]], list[float]]:
    week = (dt.date.today() - dt.timedelta(days=7)).isoformat()
    queries = [
        "/alerts",
        "/alerts?state=open",
        "/alerts?rule=test.failed",
        f"/alerts?from={week}&state=open",
        "/alerts?page=20",
    ]
    async with httpx2.AsyncClient(base_url=base) as client:
        await _login(client, "bench-district")
        pages: dict[str, list[float]] = {query: [] for query in queries}
        static: list[float] = []
        for _ in range(rounds):
            for query in queries:
                pages[query].append(_server_ms(await client.get(query)))
            static.append(_server_ms(await client.get("/static/console.css")))
    return pages, static


async def _feed(base: str, feed: AlertFeed, store: RulesStore, clients: int) -> float:
    """Seconds from one notify to the last of ``clients`` streams receiving it."""
    received: list[float] = []
    ready = asyncio.Event()
    connected = 0
    got_all = asyncio.Event()

    async def listen(client: httpx2.AsyncClient) -> None:
        nonlocal connected
        async with client.stream("GET", "/events", timeout=None) as response:
            lines = response.aiter_lines()
            await anext(lines)  # retry: the stream is open
            connected += 1
            if connected == clients:
                ready.set()
            async for line in lines:
                if line.startswith("event: alert"):
                    received.append(time.perf_counter())
                    if len(received) == clients:
                        got_all.set()
                    return

    limits = httpx2.Limits(max_connections=clients + 10)
    async with httpx2.AsyncClient(base_url=base, limits=limits) as login_client:
        await _login(login_client, "bench-city")
        cookies = login_client.cookies
    async with httpx2.AsyncClient(base_url=base, limits=limits, cookies=cookies) as client:
        tasks = [asyncio.create_task(listen(client)) for _ in range(clients)]
        await asyncio.wait_for(ready.wait(), 60)
        (alert,) = store.alerts(limit=1)
        sent = time.perf_counter()
        await feed.notify(alert)
        await asyncio.wait_for(got_all.wait(), 60)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return max(received) - sent


async def main(alerts: int, clients: int) -> None:
    registry = _registry()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = RulesStore(work / "rules.sqlite")
        began = time.perf_counter()
        _fill(store, registry, alerts)
        print(f"filled {alerts} alerts over {len(registry.canteens)} canteens in {time.perf_counter() - began:.1f} s")
        feed = AlertFeed()
        console = Console(
            registry=registry,
            clock=SystemClock(),
            alerts=RulesStore(work / "rules.sqlite"),
            readings=LocalReadings(work / "store.sqlite"),
            passwords=write_passwords(work / "web-passwords.yaml", registry),
            store=ConsoleStore(work / "console.sqlite"),
            feed=feed,
            secret_key="benchmark-secret-key-of-enough-length",
        )
        server = ConsoleServer(create_app(console), "127.0.0.1", 0)
        serving = asyncio.create_task(server.serve())
        await asyncio.sleep(0.2)
        by_query, static = await _inbox(server.url, rounds=10)
        pages = [ms for times in by_query.values() for ms in times]
        p50, p90 = statistics.median(pages), statistics.quantiles(pages, n=10)[-1]
        print(
            f"inbox (district, {len(pages)} filtered pages): server time median {p50:.1f} ms, p90 {p90:.1f} ms, "
            f"max {max(pages):.1f} ms; static file median {statistics.median(static):.2f} ms "
            f"(ratio {p50 / statistics.median(static):.0f}x)"
        )
        for query, times in by_query.items():
            print(f"  {query}: median {statistics.median(times):.1f} ms, max {max(times):.1f} ms")
        one = await _feed(server.url, feed, store, 1)
        many = await _feed(server.url, feed, store, clients)
        print(f"live feed: 1 stream {one * 1000:.1f} ms; {clients} streams, the last after {many * 1000:.1f} ms")
        server.request_stop()
        await serving


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.alerts, args.clients))
