"""The rules engine's figures on the Prometheus endpoint, read from :class:`RulesStats` at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from rules.stats import RulesStats


class RulesCollector(Collector):
    def __init__(self, stats: RulesStats, instance: str) -> None:
        self.stats = stats
        self.instance = instance

    def collect(self) -> Iterator[Any]:
        labels = [self.instance]
        applied = CounterMetricFamily("shian_rules_applied", "Records the rules engine applied", labels=["instance"])
        applied.add_metric(labels, self.stats.applied)
        yield applied
        records = GaugeMetricFamily(
            "shian_rules_lag_records", "Records in the spool the rules engine has not applied", labels=["instance"]
        )
        records.add_metric(labels, self.stats.lag_records)
        yield records
        seconds = GaugeMetricFamily(
            "shian_rules_lag_seconds", "How long the oldest unapplied record has waited", labels=["instance"]
        )
        seconds.add_metric(labels, self.stats.lag_s)
        yield seconds
