"""Bad input never crashes or stalls the gateway, and nothing is silently dropped:
every delivery is stored, found a duplicate, or dead-lettered."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from broker_config.managed import ManagedMosquitto
from devices.decode import DecodeError, decode, decode_carefully
from devices.registry import Registry
from devices.topics import Channel, DeviceKind, format_device_topic, parse_device_topic
from gateway.intake import Accepted, Classifier, Rejected, classify
from mqtt.bus import Incoming
from spool import Spool
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


@settings(max_examples=2000, deadline=None)
@given(st.randoms(use_true_random=False), st.sampled_from(VALID))
def test_the_one_pass_decoder_agrees_with_the_careful_one(rng: random.Random, valid: tuple[str, bytes]) -> None:
    """``decode`` validates in one pass and falls back to ``decode_carefully`` for the reason: both must accept
    the same payloads, as the same message."""
    topic, payload = valid
    route = parse_device_topic(topic)
    mutated = mutate(payload, rng)

    def outcome(decoder: Callable[[bytes, DeviceKind, Channel], object]) -> object:
        try:
            return decoder(mutated, route.kind, route.channel)
        except DecodeError as exc:
            return (exc.reason, exc.detail)

    assert outcome(decode) == outcome(decode_carefully)


async def test_ten_thousand_mutated_payloads_are_all_accounted_for(
    mosquitto: ManagedMosquitto, tmp_path: Path, uid: str
) -> None:
    registry = make_registry(uid, canteens=2)
    rng = random.Random(f"fuzz-{FUZZ_SEED}")
    sent = [(topic, mutate(payload, rng)) for topic, payload in records_for(uid, 10_000, canteens=2)]
    spool_path = tmp_path / "spool.sqlite"
    async with gateway_in_process(mosquitto, registry, spool_path, f"gw-{uid}") as gateway:
        await publish_all(mosquitto, f"fuzzer-{uid}", sent)
        # what other tests left retained on the shared broker (alerts, platform topics) is ignored, not counted
        await eventually(
            lambda: gateway.stats.received - gateway.stats.ignored.total() >= len(sent),
            timeout=60,
            what=f"all received (reproduce with FUZZ_SEED={FUZZ_SEED!r})",
        )
        stats = gateway.stats
        dead_lettered = sum(stats.rejected.values())
        # Each delivery has one verdict; on a busy machine the broker may deliver a message again that it had
        # not seen acknowledged (a duplicate if stored, a second dead letter if refused): never fewer.
        assert stats.stored + stats.duplicates + dead_lettered >= len(sent)
        assert dead_lettered > 9000  # nearly all mutations break the payload
        assert len(stats.rejected) >= 8  # and in many different ways
    spool = Spool(spool_path)
    try:
        assert spool.count_records() == stats.stored
        assert spool.count_dead_letters() == dead_lettered
        stored = {
            (format_device_topic(r.canteen_id, r.kind, r.device_id, r.channel), r.payload) for r in spool.all_records()
        }
        refused = {(d.topic, d.payload) for d in spool.dead_letters(limit=len(sent) * 2)}
    finally:
        spool.close()
    lost = [message for message in sent if message not in stored and message not in refused]
    assert lost == [], f"{len(lost)} messages neither stored nor dead-lettered (FUZZ_SEED={FUZZ_SEED!r})"
    print(
        f"10,000 mutated payloads: {stats.stored} stored, {stats.duplicates} duplicates, by reason: "
        f"{dict(stats.rejected.most_common())}"
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([topic for topic, _ in VALID[:8]] + ["shian/v1/c9/cabinet/ghost/telemetry", "bad/topic"]),
            st.booleans(),
        ),
        max_size=30,
    )
)
def test_the_classifier_remembers_topics_without_changing_a_verdict(deliveries: list[tuple[str, bool]]) -> None:
    """The gateway's classifier keeps what each topic means (a bounded memory, here two topics); its verdicts
    are those of classifying every delivery from scratch."""
    classifier = Classifier(REGISTRY, topics=2)
    payloads = dict(VALID)
    for topic, retain in deliveries:
        incoming = Incoming(topic, payloads.get(topic, b"{}"), 1, retain, 1)
        assert classifier(incoming) == classify(incoming, REGISTRY)
        assert len(classifier._topics) <= 2
