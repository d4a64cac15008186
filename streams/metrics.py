"""Prometheus metrics of CONTRACT.md, built against a passed-in registry.

Labels are bounded sets only (district, venue type, decision, reason, kind, severity,
measure, outcome, topic, dead-letter reason): never a person, event or device identifier.
Label children are cached so that the hot path does one dict lookup per increment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

# Seconds; scan processing is sub-millisecond, event lag spans seconds to hours for late uploads.
PROCESSING_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 86400.0)


class _Children:
    """A memo of ``metric.labels(*values)`` children, keyed by the label-value tuple."""

    def __init__(self, metric: MetricWrapperBase) -> None:
        self._metric = metric
        self._cache: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._cache.get(values)
        if child is None:
            child = self._cache[values] = self._metric.labels(*values)
        return child


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.scans = _Children(Counter(
            "hcs_scans_total", "Scans judged, by decision.",
            ["district", "venue_type", "decision"], registry=r))
        self.scan_reasons = _Children(Counter(
            "hcs_scan_reasons_total", "Reason codes given on decisions.",
            ["district", "venue_type", "reason"], registry=r))
        self.alerts = _Children(Counter(
            "hcs_alerts_total", "Alerts emitted (firing or resolved).",
            ["district", "kind", "severity"], registry=r))
        self.entries = _Children(Counter(
            "hcs_entries_total", "People counted passing checkpoints.",
            ["district", "venue_type"], registry=r))
        self.three100 = _Children(Counter(
            "hcs_three100_checks_total", "Three-100% checks per measure and outcome.",
            ["district", "measure", "outcome"], registry=r))
        self.three100_late = _Children(Counter(
            "hcs_three100_late_total",
            "Scans and entry counts that arrived after their checkpoint window was closed (not counted in it).",
            ["district"], registry=r))
        self.duplicates = _Children(Counter(
            "hcs_duplicates_total", "Redelivered records (same event_id) that were dropped.",
            ["topic"], registry=r))
        self.dead_letters = _Children(Counter(
            "hcs_dead_letters_total", "Records that could not be accepted, by reason.",
            ["topic", "reason"], registry=r))
        self.late = _Children(Counter(
            "hcs_late_events_total", "Scans read more than 5 minutes after their event_time.",
            ["district"], registry=r))
        self.processing_errors = _Children(Counter(
            "hcs_processing_errors_total", "Records whose processing failed on a bug (not bad input).",
            ["topic"], registry=r))
        self.processing = Histogram(
            "hcs_scan_processing_seconds", "Time to decode, judge and emit one scan.",
            buckets=PROCESSING_BUCKETS, registry=r)
        self.lag = _Children(Histogram(
            "hcs_event_lag_seconds", "Time from a scan's event_time to its judgement.",
            ["district"], buckets=LAG_BUCKETS, registry=r))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
