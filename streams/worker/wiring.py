"""The worker's concepts, built and listed in one place.

Every concept (:mod:`streams.concepts`) is made here with what it reads and writes, explicitly:
no concept finds another through the app. :attr:`Wiring.concepts` lists them in the order their
timers run within one tick (windows close before the district minutes they count in); the
drains and timers of :mod:`streams.worker.drains` walk their :meth:`inputs` and :meth:`timers`.
Adding a concept is a line here (see the README's architecture section).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Sequence

from streams.concepts.aggregation import StatsOwner
from streams.concepts.alerting import Alerts
from streams.concepts.base import Concept, Input, Sink, Timer
from streams.concepts.contacts import Contacts
from streams.concepts.entries import EntryCounts
from streams.concepts.incidents import Incidents
from streams.concepts.intake import Intake
from streams.concepts.isolation import IsolationPoints
from streams.concepts.judging import Judging
from streams.concepts.minutes import DistrictMinutes, PartialsSink
from streams.concepts.policies import PolicyFeed
from streams.concepts.rechecks import Rechecks
from streams.concepts.refusals import ViewRefusals
from streams.concepts.register import Register
from streams.concepts.silence import Checkpoints
from streams.concepts.supervision import Supervision
from streams.concepts.tracing import Tracing
from streams.concepts.visits import Visits
from streams.concepts.windows import ComplianceWindows
from streams.contract import topics
from streams.kafka.state import DedupMarks, PartitionedState
from streams.metrics import Metrics
from streams.rules.compliance import StreamClock
from streams.rules.policy import Policy
from streams.times import shanghai_day


class Wiring:
    """Every concept of one worker, over its state tables and outputs; holds no Faust object."""

    def __init__(self, policy: Policy, state: PartitionedState, seen: DedupMarks, stats: PartitionedState,
                 sink: Sink, partials: PartialsSink, metrics: Metrics, dedup_horizon_s: float,
                 is_active: Callable[[int], bool] = lambda p: True, idle_s: float = 10.0,
                 register: Register | None = None, policies: PolicyFeed | None = None,
                 visits: Visits | None = None, cases_topic: str = "", exposures_topic: str = "",
                 incidents: PartitionedState | None = None,
                 owns_alerts: Callable[[int], bool] = lambda p: True,
                 venue_partitions: int = topics.SCANS.partitions) -> None:
        self.policy, self.state, self.seen, self.metrics = policy, state, seen, metrics
        self.venue_partitions = venue_partitions  # the venue topics' partitions: the state's sources
        self.is_active = is_active  # does this worker own the partition now (for timers)?
        self.register = register if register is not None else Register()  # every managed person's plan
        self.policies = policies  # versions published to the running workers (None: the policy is fixed)
        self.clock = StreamClock(idle_s=idle_s)
        # The same clock over upload times (record timestamps): a checkpoint is silent only when
        # nothing of it was uploaded for a while either, not only nothing of recent event time.
        self.uploads = StreamClock(idle_s=idle_s)
        owned = self.owned
        self.intake = Intake(seen, sink, metrics, dedup_horizon_s, owned)
        self.alerts = Alerts(state, sink, metrics, dedup_horizon_s, owned)
        self.minutes = DistrictMinutes(state, partials, self.clock, policy, owned)
        self.rechecks = Rechecks(state, self.alerts, self.minutes, self.clock, policy, owned)
        self.windows = ComplianceWindows(state, self.alerts, self.minutes, metrics, self.clock, owned)
        self.checkpoints = Checkpoints(state, self.alerts, self.minutes, self.clock, self.uploads, policy, owned)
        self.visits = visits  # every decided scan's visit, on disk (None: not kept)
        self.judging = Judging(policy, self.intake, self.alerts, self.rechecks, self.windows, self.checkpoints,
                               self.minutes, self.register, self.clock, self.uploads, metrics, sink, visits)
        self.entries = EntryCounts(policy, self.intake, self.windows, self.checkpoints, self.clock, self.uploads,
                                   metrics)
        self.isolation = IsolationPoints(state, self.register, self.intake, self.alerts, self.minutes, metrics, sink,
                                         self.clock, self.uploads, policy, owned)
        self.supervision = Supervision(state, self.intake, self.alerts, self.minutes, metrics, sink, self.clock,
                                       policy, owned)
        self.alerts.tell(self.supervision.alerted)  # recurrences and automatic findings
        # Source tracing (with the visits): cases traced over this worker's partitions, contacts flagged.
        self.tracing = self.contacts = None
        if visits is not None:
            self.tracing = Tracing(policy, visits, state, self.alerts, sink, metrics, owned, cases_topic,
                                   sources=venue_partitions)
            self.contacts = Contacts(policy, exposures_topic)
            tracing = self.tracing
            # Late visits, at a traced venue or of a case: told while there are cases.
            visits.tell(tracing.visited, lambda: bool(tracing.cases.data))
            self.judging.contacts = self.contacts.flags
            self.judging.nat_positive = self.isolation.nat_positive = self.tracing.nat_positive
        self.refusals = ViewRefusals(policy, self.register, policies, self.intake, self.alerts, owned,
                                     self.tracing.take_refused if self.tracing is not None else None,
                                     venue_partitions)
        self.stats = StatsOwner(stats, sink, sources=venue_partitions)
        # The on-call loop, over the alerts' partitions (None: no incidents kept).
        self.owns_alerts = owns_alerts
        self.incidents = (None if incidents is None else
                          Incidents(incidents, self.intake, sink, metrics, policy, self.owned_alerts))
        # In the order their timers run within a tick of one interval.
        self.concepts: tuple[Concept, ...] = (
            self.judging, self.entries, self.windows, self.checkpoints, self.minutes, self.isolation,
            self.refusals, self.rechecks, self.supervision, self.intake, self.alerts, self.stats,
            *((self.incidents,) if self.incidents is not None else ()),
            *((visits, self.tracing, self.contacts) if self.tracing is not None and self.contacts is not None
              else ()))

    def owned(self) -> set[int]:
        """The venue partitions this worker owns now (asked once per timer run, not per key)."""
        return {p for p in range(self.venue_partitions) if self.is_active(p)}

    def owned_alerts(self) -> set[int]:
        """The alerts' partitions (incidents') this worker owns now."""
        return {p for p in range(topics.ALERTS.partitions) if self.owns_alerts(p)}

    def inputs(self) -> list[Input]:
        return [i for concept in self.concepts for i in concept.inputs()]

    def timers(self) -> dict[float, list[Timer]]:
        """Every concept's timers by interval, each interval's in the concepts' order."""
        by_interval: dict[float, list[Timer]] = {}
        for concept in self.concepts:
            for timer in concept.timers():
                by_interval.setdefault(timer.every_s, []).append(timer)
        return by_interval

    def tick(self, every_s: float, now: float) -> None:
        """Run the timers of one interval (what the worker's tick of that interval does)."""
        for timer in self.timers()[every_s]:
            timer.run(now)

    @property
    def sink(self) -> Sink:
        return self.judging.sink

    @sink.setter
    def sink(self, sink: Sink) -> None:
        """Where every output goes, for every concept (tests record them)."""
        for holder in (self.intake, self.alerts, self.judging, self.isolation, self.supervision, self.stats,
                       *((self.tracing,) if self.tracing is not None else ()),
                       *((self.incidents,) if self.incidents is not None else ())):
            holder.sink = sink

    @property
    def partials(self) -> PartialsSink:
        return self.minutes.partials

    @partials.setter
    def partials(self, partials: PartialsSink) -> None:
        self.minutes.partials = partials

    def flush(self) -> None:
        """Send state changes to the changelogs (before the batch's offsets can be committed)."""
        self.minutes.flush()
        if self.visits is not None:
            self.visits.flush()
        self.seen.flush()
        self.state.flush()
        self.stats.state.flush()
        if self.incidents is not None:
            self.incidents.state.flush()

    def release(self, partitions: Collection[int]) -> None:
        """Forget what is cached of ``partitions``, which this worker gave up: another worker may
        add to their state, and should one come back, its figures are what the table recovers
        and its stream time starts anew."""
        self.clock.forget(partitions)
        self.uploads.forget(partitions)
        self.minutes.release(partitions)

    def managed_persons(self, now: float) -> Counter[tuple[str, str]]:
        """Persons under management on today's local date, by (managing district, phase)."""
        return self.register.managed_on(shanghai_day(now))

    def incidents_counts(self) -> Counter[tuple[str, str]]:
        """This worker's incidents by (district, status)."""
        return Counter() if self.incidents is None else self.incidents.counts(self.owned_alerts())

    def findings_counts(self) -> tuple[Counter[tuple[str, str]], Counter[str]]:
        """This worker's findings by (district, status), and the overdue ones by district."""
        return self.supervision.counts(self.owned())


def timer_names(by_interval: Sequence[float]) -> dict[float, str]:
    """The worker's name of each interval's tick (its log and task name)."""
    return {every_s: f"tick_every_{every_s:g}s" for every_s in by_interval}
