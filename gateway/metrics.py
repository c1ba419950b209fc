"""The gateway's Prometheus endpoint: its counters are read from :class:`GatewayStats` at scrape time, so
there is one place that counts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from gateway.stats import GatewayStats
from spool import Spool


class GatewayCollector(Collector):
    def __init__(self, stats: GatewayStats, spool_path: Any, instance: str) -> None:
        self.stats = stats
        self.spool_path = spool_path
        self.instance = instance

    def collect(self) -> Iterator[Any]:
        s, labels = self.stats, [self.instance]
        received = CounterMetricFamily("shian_gateway_received", "Deliveries received", labels=["instance"])
        received.add_metric(labels, s.received)
        yield received
        stored = CounterMetricFamily("shian_gateway_stored", "Records stored, by type", labels=["instance", "type"])
        duplicates = CounterMetricFamily("shian_gateway_duplicates", "Duplicate records", labels=["instance"])
        duplicates.add_metric(labels, s.duplicates)
        accepted = CounterMetricFamily(
            "shian_gateway_accepted", "Valid records (stored or duplicate), by type", labels=["instance", "type"]
        )
        for kind, count in sorted(s.accepted.items()):
            accepted.add_metric([self.instance, kind], count)
        stored.add_metric([self.instance, "all"], s.stored)
        yield from (stored, duplicates, accepted)
        rejected = CounterMetricFamily(
            "shian_gateway_rejected", "Dead-lettered deliveries, by reason", labels=["instance", "reason"]
        )
        for reason, count in sorted(s.rejected.items()):
            rejected.add_metric([self.instance, reason], count)
        yield rejected
        ignored = CounterMetricFamily(
            "shian_gateway_ignored", "Deliveries that were not device input", labels=["instance", "why"]
        )
        for why, count in sorted(s.ignored.items()):
            ignored.add_metric([self.instance, why], count)
        yield ignored
        skew = CounterMetricFamily("shian_gateway_clock_skew", "Records flagged for clock skew", labels=["instance"])
        skew.add_metric(labels, s.clock_skew)
        yield skew
        reused = CounterMetricFamily(
            "shian_gateway_msg_id_reused",
            "Records stored under a msg_id used before for other content",
            labels=["instance"],
        )
        reused.add_metric(labels, s.msg_id_reused)
        yield reused
        latency = HistogramMetricFamily(
            "shian_gateway_ack_latency_seconds", "From arrival to broker acknowledgement", labels=["instance"]
        )
        latency.add_metric(labels, s.ack_latency.cumulative(), s.ack_latency.total)
        yield latency
        # Read through a connection of this (scrape) thread; the gateway's own belongs to its writer.
        spool = Spool(self.spool_path)
        try:
            backlog = GaugeMetricFamily(
                "shian_gateway_spool_backlog", "Records not yet passed by the slowest consumer", labels=["instance"]
            )
            backlog.add_metric(labels, spool.backlog())
            yield backlog
        finally:
            spool.close()


def serve_metrics(
    stats: GatewayStats, spool: Spool, instance: str, *, port: int, bind: str, also: Sequence[Collector] = ()
) -> int:
    """Start the endpoint in a background thread; return the port it listens on. ``also``: the collectors of
    the other parts of the platform in this process (the rules engine's)."""
    registry = CollectorRegistry()
    registry.register(GatewayCollector(stats, spool.path, instance))
    for collector in also:
        registry.register(collector)
    server, _ = start_http_server(port, addr=bind, registry=registry)
    return int(server.server_port)
