"""Turn a valid payload into a plausibly broken one, the way buggy firmware, bit rot and fuzzers do."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

_ODD_VALUES: list[Any] = [None, "", "x", -1, 0, 1e308, True, [], {}, "2026-11-25T11:30:00", "NaN", 10**20]


def _drop_field(data: dict[str, Any], rng: random.Random) -> bytes:
    data.pop(rng.choice(sorted(data)), None)
    return json.dumps(data).encode()


def _retype_field(data: dict[str, Any], rng: random.Random) -> bytes:
    data[rng.choice(sorted(data))] = rng.choice(_ODD_VALUES)
    return json.dumps(data).encode()


def _add_field(data: dict[str, Any], rng: random.Random) -> bytes:
    data[rng.choice(["extra", "temp", "Type", "msgId", "ts2"])] = rng.choice(_ODD_VALUES)
    return json.dumps(data).encode()


def _truncate(data: dict[str, Any], rng: random.Random) -> bytes:
    raw = json.dumps(data).encode()
    return raw[: rng.randrange(len(raw))]


def _flip_byte(data: dict[str, Any], rng: random.Random) -> bytes:
    raw = bytearray(json.dumps(data).encode())
    raw[rng.randrange(len(raw))] = rng.randrange(256)
    return bytes(raw)


def _wrap(data: dict[str, Any], rng: random.Random) -> bytes:
    return json.dumps(rng.choice([[data], "text", 42, None, {"payload": data}])).encode()


def _swap_type(data: dict[str, Any], rng: random.Random) -> bytes:
    data["type"] = rng.choice(["test.result", "cabinet.reading", "camera.stream", "device.status", "bogus", 7])
    return json.dumps(data).encode()


def _junk(data: dict[str, Any], rng: random.Random) -> bytes:
    return rng.randbytes(rng.randrange(0, 200))


MUTATIONS: list[Callable[[dict[str, Any], random.Random], bytes]] = [
    _drop_field,
    _retype_field,
    _add_field,
    _truncate,
    _flip_byte,
    _wrap,
    _swap_type,
    _junk,
]


def mutate(payload: bytes, rng: random.Random) -> bytes:
    """One to three mutations of ``payload`` (valid JSON object). The result may, rarely, still be valid."""
    data = json.loads(payload)
    for _ in range(rng.randint(1, 3)):
        mutation = rng.choice(MUTATIONS) if data else _add_field
        mutated = mutation(dict(data), rng)
        try:
            decoded = json.loads(mutated)
        except ValueError:
            return mutated
        if not isinstance(decoded, dict):
            return mutated
        data = decoded
    return json.dumps(data).encode()
