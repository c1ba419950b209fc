"""Benchmark: the live kitchen's media path on loopback.

1. --cameras simulated cameras (ffmpeg, 320x180, 10 fps, 150 kbit/s) push to the managed nginx-rtmp of a running
   platform; with nobody watching, the media server's CPU per stream.
2. --viewers players fetch the playlist and each new segment as hls.js does (one playlist a fragment), every
   request authorised by the console; prints viewers held (no request refused or failed), bytes/s served, and
   the CPU of the media server and of the platform (the console answering its questions) per viewer.
3. Throughput: --fetchers closed-loop clients in another process, each a viewer of its own, fetch the playlist
   and a segment as fast as they can, first through the authorised path, then the same files from the same
   server without authorisation (/open/, enabled for this run only); prints both and their ratio (the goal: 0.5
   or more). The fetchers are Python (httpx): at these rates they are the limit of both paths, so the ratio says
   how much the authorisation costs beside a client, not nginx's own ceiling.
4. The same with wrk (Debian's wrk, a C load generator, when installed): nginx's own ceiling on both paths.
5. wrk again, every request a new viewer, so that none of the console's answers is cached: how many questions
   one console process answers a second, and so how many viewers it carries.

    .venv/bin/python -m benchmarks.video [--cameras 8] [--viewers 100] [--seconds 20] [--fetchers 32]

Both sides run on this machine, so the ratio is the figure to compare between runs, not the absolute rates.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import multiprocessing
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx2 as httpx

from broker_config.managed import ManagedMosquitto
from console.video_access import MediaLink
from devices.registry import Registry
from tests.console_helpers import tenants_registry
from tests.helpers import eventually
from tests.video_rig import camera, video_platform
from video.evidence import fragments
from video.keys import clear_keys
from video.nginx_conf import AUTH_CACHE_S

TICKS = os.sysconf("SC_CLK_TCK")


def _registry(cameras: int) -> Registry:
    data = tenants_registry().model_dump(mode="json", exclude_none=True)
    canteen = data["canteens"][0]
    canteen["live_to_parents"] = "all_day"
    canteen["devices"] = [d for d in canteen["devices"] if d["kind"] != "camera"] + [
        {"id": f"c-a-cam{n}", "kind": "camera", "video": "push", "area": "cooking"} for n in range(cameras)
    ]
    return Registry.model_validate(data)


def _cpu_s(pids: list[int]) -> float:
    """User and system CPU of these processes and their children so far, in seconds."""
    total = 0
    for pid in pids:
        for candidate in [pid, *_children(pid)]:
            try:
                fields = Path(f"/proc/{candidate}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


async def _player(client: httpx.AsyncClient, playlist: str, until: float, tally: dict[str, int]) -> bool:
    """One player: the playlist every fragment, each new segment once. False when any request was refused."""
    seen: set[str] = set()
    while time.monotonic() < until:
        response = await client.get(playlist)
        if response.status_code != 200:
            tally["refused"] += 1
            return False
        tally["bytes"] += len(response.content)
        for name in [line for line in response.text.splitlines() if line and not line.startswith("#")][-3:]:
            if name in seen:
                continue
            seen.add(name)
            segment = await client.get(playlist.rsplit("/", 1)[0] + "/" + name)
            if segment.status_code != 200:
                tally["refused" if segment.status_code == 403 else "missing"] += 1
                continue
            tally["bytes"] += len(segment.content)
        await asyncio.sleep(1.0)  # hls.js asks for a live playlist once a target duration (1 s here)
    return True


def _fetch_as_fast(base: str, seconds: float, fetchers: int, result: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """``base`` has a ``{viewer}`` place: each fetcher is a viewer of its own, as each player is."""

    async def run() -> int:
        served = 0
        deadline = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=fetchers, max_keepalive_connections=fetchers)
        async with httpx.AsyncClient(timeout=10, limits=limits) as client:

            async def loop(viewer: str) -> None:
                nonlocal served
                own = base.format(viewer=viewer)
                listed = (await client.get(f"{own}/index.m3u8")).text.splitlines()
                segment = [line for line in listed if line[:1].isdigit()][-2]
                while time.monotonic() < deadline:
                    for path in ("index.m3u8", segment):
                        response = await client.get(f"{own}/{path}")
                        if response.status_code == 200:
                            served += len(response.content)

            await asyncio.gather(*(loop(f"fetcher-{n:04d}") for n in range(fetchers)))
        return served

    result.put(asyncio.run(run()))


#: wrk's script: each request alternates the playlist and one segment, over 16 viewers per thread.
WRK_SCRIPT = """
local threads = 0
function setup(thread) threads = threads + 1; thread:set("id", threads) end
function init(args) n = 0 end
function request()
  n = n + 1
  local viewer = string.format("wrk-%d-%08d", id, n % {viewers})
  local file = (n % 2 == 0) and "index.m3u8" or "{segment}"
  return wrk.format("GET", string.format("{path}", viewer) .. "/" .. file)
end
"""
_UNITS = {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30}


def _wrk(
    server: str, path: str, segment: str, *, seconds: float, connections: int, work: Path, viewers: int = 16
) -> tuple[float, float] | None:
    """(bytes/s, requests/s) wrk (a C load generator) fetches under ``path`` (``%s``: the viewer, when it has
    one), each of its two threads cycling through ``viewers`` viewers; None without wrk."""
    binary = shutil.which("wrk")
    if binary is None:
        return None
    script = work / "wrk.lua"
    body = WRK_SCRIPT.replace("{segment}", segment).replace("{path}", path).replace("{viewers}", str(viewers))
    script.write_text(body, encoding="utf-8")
    argv = [binary, "-t2", f"-c{connections}", f"-d{int(seconds)}s", "-s", str(script), server]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    transfer = re.search(r"Transfer/sec:\s+([0-9.]+)([KMG]?B)", out)
    requests = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if transfer is None or requests is None:
        return None
    return float(transfer[1]) * _UNITS[transfer[2]], float(requests[1])


async def _wrk_phase(link: MediaLink, camera_id: str, token: str, o: Options, tmp: Path) -> None:
    print(f"4. the same with wrk, {o.fetchers} connections over 32 viewers, {o.seconds:.0f} s each…", flush=True)
    segment = [f.path.name for f in fragments(link.hls_dir or tmp, camera_id)][-3]
    play = urlsplit(link.play_url)
    server = f"{play.scheme}://{play.netloc}"

    def run(path: str, viewers: int = 16) -> tuple[float, float] | None:
        return _wrk(server, path, segment, seconds=o.seconds, connections=o.fetchers, work=tmp, viewers=viewers)

    authorised = await asyncio.to_thread(run, f"/video/p.{token}/%s/{camera_id}")
    unauthorised = await asyncio.to_thread(run, f"/open/{camera_id}")
    if authorised is None or unauthorised is None:
        print("   wrk is not installed (apt install wrk): skipped")
        return
    print(f"   authorised {authorised[0] / 1e6:.1f} MB/s, without authorisation {unauthorised[0] / 1e6:.1f} MB/s")
    print(f"   ratio authorised / unauthorised: {authorised[0] / unauthorised[0]:.2f}")
    print("5. every request a new viewer (no answer cached): the console's own rate of answers…", flush=True)
    uncached = await asyncio.to_thread(run, f"/video/p.{token}/%s/{camera_id}", 10**8)
    if uncached is not None:
        print(
            f"   {uncached[1]:,.0f} requests/s answered by the console; at one question per viewer every "
            f"{AUTH_CACHE_S} s that is {uncached[1] * AUTH_CACHE_S:,.0f} viewers per console process"
        )


def _throughput(base: str, seconds: float, fetchers: int) -> float:
    spawn = multiprocessing.get_context("spawn")  # not a fork of a process with threads
    queue: multiprocessing.Queue[int] = spawn.Queue()
    process = spawn.Process(target=_fetch_as_fast, args=(base, seconds, fetchers, queue))
    process.start()
    served = queue.get(timeout=seconds + 60)
    process.join()
    return served / seconds


@dataclasses.dataclass(frozen=True)
class Options:
    cameras: int
    viewers: int
    seconds: float
    fetchers: int


async def main(options: Options) -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        broker = ManagedMosquitto(tmp / "broker")
        broker.start()
        try:
            await _run(tmp, broker, options)
        finally:
            broker.stop()


async def _run(tmp: Path, broker: ManagedMosquitto, o: Options) -> None:
    registry = _registry(o.cameras)
    unlimited = {"max_viewers": 10**9, "max_viewers_per_stream": 10**9}  # the benchmark counts, not the limits
    async with video_platform(
        tmp, broker, uuid.uuid4().hex[:8], registry, open_location=True, video=unlimited
    ) as platform:
        video, console = platform.video, platform.console
        assert video is not None
        assert video.server is not None
        assert console is not None
        names = [d.id for d in registry.canteens[0].devices if d.video == "push"]
        keys = clear_keys(tmp)
        async with contextlib.AsyncExitStack() as pushing:
            for name in names:
                await pushing.enter_async_context(camera(platform, name, keys[name], tmp / "cameras"))
            print(f"1. {o.cameras} cameras pushing…", flush=True)
            await eventually(lambda: video.board.publishing == o.cameras, what="every camera publishing")
            await asyncio.sleep(3)  # a benchmark's warm-up: the first fragments written
            nginx, platform_pids = [video.server.pid or 0], [os.getpid()]
            cpu0, at0 = _cpu_s(nginx), time.monotonic()
            await asyncio.sleep(o.seconds / 2)  # a measuring window
            per_stream = (_cpu_s(nginx) - cpu0) / (time.monotonic() - at0) / o.cameras
            print(
                f"   streams held {video.board.publishing}/{o.cameras}; media server CPU per stream "
                f"{per_stream * 100:.2f} %"
            )

            _, token = console.store.issue_public_token("c-a", "public", platform.clock.now())
            base = f"{video.link.play_url}/video/p.{token}"
            print(f"2. {o.viewers} players for {o.seconds:.0f} s…", flush=True)
            tally = {"bytes": 0, "refused": 0, "missing": 0}
            nginx0, platform0, at0 = _cpu_s(nginx), _cpu_s(platform_pids), time.monotonic()
            limits = httpx.Limits(max_connections=o.viewers, max_keepalive_connections=o.viewers)
            async with httpx.AsyncClient(timeout=10, limits=limits) as client:
                until = time.monotonic() + o.seconds
                playlists = [
                    f"{base}/{secrets.token_urlsafe(9)}/{names[i % o.cameras]}/index.m3u8" for i in range(o.viewers)
                ]
                held = await asyncio.gather(*(_player(client, p, until, tally) for p in playlists))
            span = time.monotonic() - at0
            nginx_cpu, platform_cpu = (_cpu_s(nginx) - nginx0) / span, (_cpu_s(platform_pids) - platform0) / span
            print(
                f"   viewers held {sum(held)}/{o.viewers}; served {tally['bytes'] / span / 1e6:.2f} MB/s; "
                f"refused {tally['refused']}, missing {tally['missing']}"
            )
            print(
                f"   CPU per viewer: media server {nginx_cpu / o.viewers * 100:.3f} %, platform (with the players, "
                f"which run in its process here) {platform_cpu / o.viewers * 100:.3f} %"
            )

            print(f"3. throughput with {o.fetchers} fetchers for {o.seconds:.0f} s each…", flush=True)
            viewer = secrets.token_urlsafe(9)
            # in a thread: the console, on this event loop, answers the media server's questions meanwhile
            authorised = await asyncio.to_thread(_throughput, f"{base}/{viewer}/{names[0]}", o.seconds, o.fetchers)
            print(f"   authorised {authorised / 1e6:.1f} MB/s")
            open_rate = await asyncio.to_thread(
                _throughput, f"{video.link.play_url}/open/{names[0]}", o.seconds, o.fetchers
            )
            print(f"   without authorisation {open_rate / 1e6:.1f} MB/s")
            print(f"   ratio authorised / unauthorised: {authorised / open_rate:.2f}")

            await _wrk_phase(video.link, names[0], token, o, tmp)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--viewers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fetchers", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(main(Options(args.cameras, args.viewers, args.seconds, args.fetchers)))
