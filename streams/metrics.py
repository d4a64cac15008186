"""Prometheus metrics of docs/interface.md, built against a passed-in registry.

Labels are bounded sets only (district, venue type, decision, reason, kind, severity,
measure, outcome, topic, dead-letter reason): never a person, event or device identifier.
Updated several times per scan, they are plain in-process values read by a collector at scrape
time (see :class:`_Family`).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from streams.rules import incidents
from streams.rules.findings import STATUSES

# Seconds; scan processing is sub-millisecond, event lag spans seconds to hours for late uploads.
PROCESSING_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 86400.0)
TRACE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
# Seconds from an incident's trigger to its first ack: the on-call team's response time.
ACK_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 86400.0)


class _CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class _HistogramChild:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def observe_many(self, value: float, times: int) -> None:
        """``times`` observations of one ``value``."""
        self.counts[bisect_left(self.bounds, value)] += times
        self.sum += value * times

    def observe_all(self, values: list[float]) -> None:
        bounds, counts = self.bounds, self.counts
        for value in values:
            counts[bisect_left(bounds, value)] += 1
        self.sum += sum(values)


class _Family:
    """A labelled counter or histogram updated in place on the hot path, exposed by a collector.

    prometheus_client's own metrics take a lock and several calls per update; the worker makes
    a dozen updates per scan, all on its event loop (the /metrics page included), so plain
    attribute updates are enough. Children are cached per label-value tuple.
    """

    def __init__(self, name: str, doc: str, labels: list[str], registry: CollectorRegistry,
                 buckets: tuple[float, ...] | None = None) -> None:
        self.name, self.doc, self.labels, self.buckets = name, doc, labels, buckets
        self._children: dict[tuple[str, ...], Any] = {}
        registry.register(self)

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            if len(values) != len(self.labels):
                raise ValueError(f"{self.name} takes labels {self.labels}, got {values}")
            child = self._children[values] = (
                _CounterChild() if self.buckets is None else _HistogramChild(self.buckets))
        return child

    def collect(self) -> Iterator[Metric]:
        if self.buckets is None:
            counter = CounterMetricFamily(self.name.removesuffix("_total"), self.doc, labels=self.labels)
            for values, child in self._children.items():
                counter.add_metric(values, child.value)
            yield counter
            return
        histogram = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
        for values, child in self._children.items():
            cumulative, buckets = 0, []
            for bound, count in zip((*child.bounds, math.inf), child.counts, strict=True):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))  # type: ignore[no-untyped-call]
            histogram.add_metric(values, buckets, child.sum)
        yield histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.scans = _Family(
            "hcs_scans_total", "Scans judged, by decision.",
            ["district", "venue_type", "decision"], r)
        self.scan_reasons = _Family(
            "hcs_scan_reasons_total", "Reason codes given on decisions.",
            ["district", "venue_type", "reason"], r)
        self.alerts = _Family(
            "hcs_alerts_total", "Alerts emitted (firing or resolved).",
            ["district", "kind", "severity"], r)
        self.entries = _Family(
            "hcs_entries_total", "People counted passing checkpoints.",
            ["district", "venue_type"], r)
        self.three100 = _Family(
            "hcs_three100_checks_total", "Three-100% checks per measure and outcome.",
            ["district", "measure", "outcome"], r)
        self.three100_late = _Family(
            "hcs_three100_late_total",
            "Scans and entry counts that arrived after their checkpoint window was closed (not counted in it).",
            ["district"], r)
        self.isolation_observations = _Family(
            "hcs_isolation_observations_total",
            "Isolation-point residents' scheduled observations at day close, done or missed.",
            ["district", "kind", "outcome"], r)
        self.finding_transitions = _Family(
            "hcs_finding_transitions_total",
            "Findings' changes by action: open rectify verify reject cancel, and the stream's reopen close overdue.",
            ["district", "action"], r)
        self.duplicates = _Family(
            "hcs_duplicates_total", "Redelivered records (same event_id) that were dropped.",
            ["topic"], r)
        self.dead_letters = _Family(
            "hcs_dead_letters_total", "Records that could not be accepted, by reason.",
            ["topic", "reason"], r)
        self.late = _Family(
            "hcs_late_events_total", "Scans read more than 5 minutes after their event_time.",
            ["district"], r)
        self.processing_errors = _Family(
            "hcs_processing_errors_total", "Records whose processing failed on a bug (not bad input).",
            ["topic"], r)
        self.processing = _Family(
            "hcs_scan_processing_seconds", "Time to decode, judge and emit one scan (its share of its record's time).",
            [], r, buckets=PROCESSING_BUCKETS)()
        self.lag = _Family(
            "hcs_event_lag_seconds", "Time from a scan's event_time to its judgement.",
            ["district"], r, buckets=LAG_BUCKETS)
        self.traces = _Family(
            "hcs_traces_total", "Cases whose trace completed (every venue partition reported), by the case's district.",
            ["district"], r)
        self.exposures = _Family(
            "hcs_exposures_total", "Exposures written (a case's contact at a venue), by the venue's district.",
            ["district"], r)
        self.trace_seconds = _Family(
            "hcs_trace_seconds", "Time from a case read to its trace complete.",
            [], r, buckets=TRACE_BUCKETS)()
        self.escalations = _Family(
            "hcs_escalations_total", "Incident notifications by level: 1 for each trigger and each return to level 1 "
            "after an ack timed out, 2 and 3 for escalations to the supervisors.",
            ["district", "severity", "level"], r)
        self.time_to_acknowledge = _Family(
            "hcs_incident_ack_seconds", "Time from an incident's trigger to its first acknowledgement.",
            ["district", "severity"], r, buckets=ACK_BUCKETS)

    def watch_visits(self, stored: Callable[[], int]) -> None:
        """Export about how many visits this worker's partitions hold (``hcs_visits_stored``;
        each worker its own partitions': sum them)."""
        self.registry.register(_GaugeCollector("hcs_visits_stored", "Visits stored for source tracing on this "
                                               "worker's venue partitions (RocksDB's estimate).", stored))

    def watch_partitions(self, assigned: Callable[[], Mapping[str, int]]) -> None:
        """Export how many partitions of each topic this worker owns (``hcs_partitions_assigned``:
        its share of the work after each rebalance; standbys not counted)."""
        self.registry.register(_PartitionsCollector(assigned))

    def watch_kafka(self, reachable: Callable[[], bool], outages: Callable[[], int]) -> None:
        """Export whether Kafka is reachable (``hcs_kafka_reachable``) and how often it was lost."""
        self.registry.register(_KafkaCollector(reachable, outages))

    def watch_register(self, managed: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        """Export the persons under management today by managing district and phase
        (``hcs_managed_persons``; every worker holds the whole register: take max, not sum)."""
        self.registry.register(_RegisterCollector(managed))

    def watch_findings(self, counts: Callable[[], tuple[Mapping[tuple[str, str], int], Mapping[str, int]]]) -> None:
        """Export this worker's findings by district and status (``hcs_findings``) and the overdue
        ones by district (``hcs_findings_overdue``); each worker its own partitions': sum them."""
        self.registry.register(_FindingsCollector(counts))

    def watch_incidents(self, counts: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        """Export this worker's incidents by district and status (``hcs_incidents``; each worker
        its own partitions': sum them)."""
        self.registry.register(_IncidentsCollector(counts))

    def watch_policy(self, in_force: Callable[[], str]) -> None:
        """Export the policy version in force at the wall clock (``hcs_policy_version_info``)."""
        self.registry.register(_PolicyCollector(in_force))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _KafkaCollector:
    def __init__(self, reachable: Callable[[], bool], outages: Callable[[], int]) -> None:
        self._reachable, self._outages = reachable, outages

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("hcs_kafka_reachable", "1 while the worker reaches Kafka, 0 during an outage.",
                                value=1.0 if self._reachable() else 0.0)
        yield CounterMetricFamily("hcs_kafka_outages", "Times the worker lost its connection to Kafka.",
                                  value=float(self._outages()))


class _RegisterCollector:
    def __init__(self, managed: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        self._managed = managed

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("hcs_managed_persons", "Persons under management on today's local date, by "
                                   "managing district and phase (the whole register, on every worker).",
                                   labels=["district", "phase"])
        for (district, phase), n in sorted(self._managed().items()):
            family.add_metric([district, phase], float(n))
        yield family


class _FindingsCollector:
    def __init__(self, counts: Callable[[], tuple[Mapping[tuple[str, str], int], Mapping[str, int]]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        by_status, overdue = self._counts()
        family = GaugeMetricFamily("hcs_findings", "Findings by district and status (this worker's partitions; "
                                   "ended ones are kept 35 days).", labels=["district", "status"])
        # Every status of a district with findings, zeros included: a panel's series do not vanish.
        for district in sorted({d for d, _ in by_status}):
            for status in STATUSES:
                family.add_metric([district, status], float(by_status.get((district, status), 0)))
        yield family
        late = GaugeMetricFamily("hcs_findings_overdue", "OPEN or REOPENED findings past their deadline, by "
                                 "district (this worker's partitions).", labels=["district"])
        for district in sorted({d for d, _ in by_status}):
            late.add_metric([district], float(overdue.get(district, 0)))
        yield late


class _IncidentsCollector:
    def __init__(self, counts: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        counts = self._counts()
        family = GaugeMetricFamily("hcs_incidents", "Incidents by district and status (this worker's partitions; "
                                   "resolved ones are kept 35 days).", labels=["district", "status"])
        for district in sorted({d for d, _ in counts}):  # every status, zeros included
            for status in incidents.STATUSES:
                family.add_metric([district, status], float(counts.get((district, status), 0)))
        yield family


class _PartitionsCollector:
    def __init__(self, assigned: Callable[[], Mapping[str, int]]) -> None:
        self._assigned = assigned

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("hcs_partitions_assigned", "Partitions this worker owns, by topic (standbys not "
                                   "counted).", labels=["topic"])
        for topic, count in sorted(self._assigned().items()):
            family.add_metric([topic], float(count))
        yield family


class _GaugeCollector:
    """One unlabelled gauge, read when scraped."""

    def __init__(self, name: str, doc: str, read: Callable[[], float]) -> None:
        self._name, self._doc, self._read = name, doc, read

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self._name, self._doc, value=float(self._read()))


class _PolicyCollector:
    def __init__(self, in_force: Callable[[], str]) -> None:
        self._in_force = in_force  # () -> the name of the version in force now

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("hcs_policy_version_info", "1 for the policy version in force at the wall clock "
                                   "(of the packaged default, HCS_POLICY_FILE and hcs.policies.v1).",
                                   labels=["version"])
        family.add_metric([self._in_force()], 1.0)
        yield family
