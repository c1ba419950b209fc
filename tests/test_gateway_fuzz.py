"""Bad input never crashes or stalls the gateway, and nothing is silently dropped:
every delivery is stored, found a duplicate, or dead-lettered."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from broker_config.managed import ManagedMosquitto
from devices.registry import Registry
from gateway.bus import Incoming
from gateway.intake import Accepted, Rejected, classify
from gateway.spool import Spool
from tests.conftest import FUZZ_SEED
from tests.gateway_harness import gateway_in_process, publish_all
from tests.helpers import eventually, make_registry, records_for
from tests.mutations import mutate

REGISTRY: Registry = make_registry("fuzz")
VALID = records_for("fuzz", 50)


@settings(max_examples=2000, deadline=None)
@given(st.randoms(use_true_random=False), st.sampled_from(VALID))
def test_classify_has_a_verdict_for_any_mutation(rng: random.Random, valid: tuple[str, bytes]) -> None:
    topic, payload = valid
    verdict = classify(Incoming(topic, mutate(payload, rng), 1, False, 1), REGISTRY)
    assert isinstance(verdict, Accepted | Rejected)
    if isinstance(verdict, Rejected):
        assert verdict.detail


async def test_ten_thousand_mutated_payloads_are_all_accounted_for(
    mosquitto: ManagedMosquitto, tmp_path: Path, uid: str
) -> None:
    registry = make_registry(uid, canteens=2)
    rng = random.Random(f"fuzz-{FUZZ_SEED}")
    sent = [(topic, mutate(payload, rng)) for topic, payload in records_for(uid, 10_000, canteens=2)]
    spool_path = tmp_path / "spool.sqlite"
    async with gateway_in_process(mosquitto, registry, spool_path, f"gw-{uid}") as gateway:
        await publish_all(mosquitto, f"fuzzer-{uid}", sent)
        await eventually(
            lambda: gateway.stats.received >= len(sent),
            timeout=60,
            what=f"all received (reproduce with FUZZ_SEED={FUZZ_SEED!r})",
        )
        stats = gateway.stats
        dead_lettered = sum(stats.rejected.values())
        assert stats.stored + stats.duplicates + dead_lettered == len(sent)
        assert dead_lettered > 9000  # nearly all mutations break the payload
        assert len(stats.rejected) >= 8  # and in many different ways
    spool = Spool(spool_path)
    try:
        assert spool.count_records() == stats.stored
        assert spool.count_dead_letters() == dead_lettered
    finally:
        spool.close()
    print(
        f"10,000 mutated payloads: {stats.stored} stored, {stats.duplicates} duplicates, by reason: "
        f"{dict(stats.rejected.most_common())}"
    )
