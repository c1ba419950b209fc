"""Two misbehaving devices on the provisioned broker — one flooding invalid 60 KB payloads, one flooding QoS 0 —
never cost the gateway its connection, and a well-behaved device's records all arrive. The 60-second soak with
its memory figures is ``benchmarks/flood.py``; this is the same run, shorter."""

from __future__ import annotations

from pathlib import Path

from benchmarks.flood import run_flood


async def test_a_flood_of_bad_input_disconnects_nothing_and_loses_nothing(tmp_path: Path) -> None:
    result = await run_flood(tmp_path, seconds=5)
    assert result.invalid_sent > 100
    assert result.qos0_sent > 100
    assert result.connections == 1  # the broker never dropped the gateway
    assert result.dead_lettered == result.invalid_sent  # each invalid payload kept, with its reason
    assert result.good_sent > 0
    assert result.good_stored == result.good_sent
