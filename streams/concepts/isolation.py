"""Centralized isolation points: their residents' observations per local day, each day closed
once, in order, by the point's partition's stream time.

Staff observations (``hcs.observations.v1``, keyed by the point, a venue: co-partitioned with
scans) are counted per resident in the point's open days. A temperature at or above the fever
threshold raises ``RESIDENT_FEVER`` and a positive sample ``NAT_POSITIVE`` at once. A day D closes
when stream time passes its end plus ``observation_grace_minutes``: its residents (from the
register: in centralized isolation at the point on D) short of ``temperature_checks_per_day``
raise ``OBSERVATION_MISSED``, those on a NAT day of ``nat_schedule_days`` with no sample
``NAT_MISSED``, and one IsolationDay record is written. Days are closed from the local day of the
point's first observation; an observation of a day already closed is counted as late (in the
next day's record) and never reopens it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from streams.concepts.alerting import Alerts
from streams.concepts.base import Input, NatPositive, RecordRef, Sink, Timer
from streams.concepts.intake import Intake
from streams.concepts.minutes import DistrictMinutes
from streams.concepts.register import Register
from streams.contract import topics
from streams.contract.codec import decode_observation
from streams.contract.encoding import encode
from streams.contract.models import Observation, Rejected
from streams.contract.records import DueDone, IsolationDay
from streams.kafka.state import PartitionedState
from streams.metrics import Metrics
from streams.rules import codes as c
from streams.rules.alerts import AlertDraft, Occurrence, person_dedup_key
from streams.rules.compliance import StreamClock
from streams.rules.isolation import summarize
from streams.rules.policy import Policy
from streams.times import DAY_S, shanghai_date, shanghai_day, shanghai_day_start

POINT_PREFIX = "p|"  # isolation point -> {district, next day to close, open days' counts, late}
VENUE_TYPE = "isolation_point"
TICK_S = 1.0  # days close this often (by stream time)


class PointDays(msgspec.Struct, gc=False):
    """An isolation point's days not closed yet: what each resident had observed on each."""

    district: str
    next: int  # the local day number to close next
    # local day number (as text: a JSON object key) -> person_ref -> [temperature checks, NAT samples]
    days: dict[str, dict[str, list[int]]]
    late: int  # observations of a closed day since the last close


class IsolationPoints:
    def __init__(self, state: PartitionedState, register: Register, intake: Intake, alerts: Alerts,
                 minutes: DistrictMinutes, metrics: Metrics, sink: Sink, clock: StreamClock, uploads: StreamClock,
                 policy: Policy, owned: Callable[[], set[int]]) -> None:
        self.intake = intake
        self.uploads = uploads
        self.points = state.typed(POINT_PREFIX, PointDays)
        self.closing = self.points.due_index(self._close_at, monotone=True)
        self.register = register
        self.alerts = alerts
        self.minutes = minutes
        self.metrics = metrics
        self.sink = sink
        self.clock = clock
        self.policy = policy
        self.owned = owned
        self.nat_positive: NatPositive | None = None  # source tracing's, set by the wiring

    def inputs(self) -> Sequence[Input]:
        return (Input("observe_isolation_points", topics.OBSERVATIONS, self.on_record),)

    def timers(self) -> Sequence[Timer]:
        return (Timer(TICK_S, self.close),)

    def on_record(self, value: bytes | None, ref: RecordRef, now: float) -> None:
        """Handle one record of ``hcs.observations.v1``: count it in its point's day."""
        item = decode_observation(value, now)
        if isinstance(item, Rejected):
            self.intake.dead_letter(item, ref, now)
            return
        if not self.intake.claim([item.event_id], topics.OBSERVATIONS, ref.partition, now):
            return
        self.clock.observe(ref.partition, item.observed_at, now)
        self.uploads.observe(ref.partition, ref.uploaded(now), now)
        self.observe(item, ref.partition, now)

    def observe(self, obs: Observation, partition: int, now: float) -> None:
        """Count one observation in its point's day; raise what it shows at once."""
        point, ref, t = obs.isolation_point_id, obs.person_ref, obs.observed_at
        key = POINT_PREFIX + point
        point_days = self.points.get(key)
        day = shanghai_day(t)
        if point_days is None:
            point_days = PointDays(obs.district, day, {}, 0)
        if day < point_days.next:
            point_days.late += 1  # its day was closed: counted as late, never reopened
        else:
            counts = point_days.days.setdefault(str(day), {})
            temperatures, samples = counts.get(ref, (0, 0))
            counts[ref] = ([temperatures + 1, samples] if obs.kind == "temperature"
                           else [temperatures, samples + 1])
        self.points.set(key, point_days, partition)
        version, params = self.policy.params(t, obs.district, VENUE_TYPE)
        fever = obs.kind == "temperature" and obs.temperature_c is not None and \
            obs.temperature_c >= params.fever_threshold_c
        positive = obs.kind == "nat_sample" and obs.nat_result == "positive"
        if fever or positive:
            minute, _ = self.minutes.minute(partition, obs.district, t)
            kind, severity, reason = ((c.RESIDENT_FEVER, c.WARNING, c.FEVER) if fever
                                      else (c.NAT_POSITIVE_ALERT, c.CRITICAL, c.NAT_POSITIVE))
            details = ({"temperature_c": obs.temperature_c} if fever else {"nat_result": obs.nat_result})
            draft = AlertDraft(kind, severity, person_dedup_key(kind, ref, point), obs.district, point, version,
                               person_ref=ref, reasons=(reason,), details=details)
            self.alerts.raise_alert(draft, obs.event_id, t, params.alert_dedup_minutes, partition, minute)
            if positive and self.nat_positive is not None:
                self.nat_positive(obs.event_id, ref, obs.district, t, partition, now)

    def close(self, now: float) -> int:
        """Close every day whose grace has passed by its partition's stream time; returns how many."""
        closed = 0
        for partition in sorted(self.owned()):
            stream_now = self.clock.now(partition, now)
            for key in self.closing.pop_due(partition, stream_now):
                point_days = self.points.get(key)
                if point_days is not None:
                    closed += self._close_days(key, point_days, partition, stream_now)
        return closed

    def _close_at(self, point_days: PointDays) -> float:
        """When a point's next day closes: its end plus the observation grace of its policy."""
        start = shanghai_day_start(point_days.next)
        _, params = self.policy.params(start, point_days.district, VENUE_TYPE)
        return start + DAY_S + params.observation_grace_minutes * 60

    def _close_days(self, key: str, point_days: PointDays, partition: int, stream_now: float) -> int:
        """Close the point's days whose grace has passed, in order; index it at the next one."""
        point, closed = key[len(POINT_PREFIX):], 0
        while self._close_at(point_days) <= stream_now:
            day = point_days.next
            version, params = self.policy.params(shanghai_day_start(day), point_days.district, VENUE_TYPE)
            self._close_day(point, point_days, day, version, params, partition)
            point_days.next = day + 1
            closed += 1
        if closed:
            self.points.set(key, point_days, partition)  # indexed again, at its next day's close
        else:
            self.closing.defer(key, partition, self._close_at(point_days))
        return closed

    def _close_day(self, point: str, point_days: PointDays, day: int, version: str, params: Any,
                   partition: int) -> None:
        district = point_days.district
        counts = point_days.days.pop(str(day), {})
        residents = [(ref, phase_day) for ref, _, phase_day in self.register.residents(point, day)]
        late, point_days.late = point_days.late, 0
        if not residents and not counts and not late:
            return  # nobody there and nothing observed: nothing to report
        summary = summarize(residents, counts, params.temperature_checks_per_day, params.nat_schedule_days)
        start, date = shanghai_day_start(day), shanghai_date(day)
        minute, _ = self.minutes.minute(partition, district, start + DAY_S - 1)
        occurrence = Occurrence(1, start, start + DAY_S, ())

        def missed(kind: str, person_ref: str, details: dict[str, Any]) -> None:
            self.alerts.emit(AlertDraft(kind, c.WARNING, f"{kind}|{person_ref}|{date}", district, point, version,
                                        occurrence, person_ref=person_ref, venue_type=VENUE_TYPE, details=details),
                             minute, partition)

        for resident in summary.residents:
            if resident.temperature_missed:
                missed(c.OBSERVATION_MISSED, resident.person_ref,
                       {"date": date, "done": resident.temperatures, "due": resident.temperature_due})
            if resident.nat_missed:
                missed(c.NAT_MISSED, resident.person_ref, {"date": date, "phase_day": resident.phase_day})
        self.sink.send(topics.ISOLATION_STATUS, point.encode(), encode(IsolationDay(
            point, district, date, len(summary.residents), DueDone(summary.temperature_due, summary.temperature_done),
            DueDone(summary.nat_due, summary.nat_done), late)))
        observed = self.metrics.isolation_observations
        observed(district, "temperature", "done").inc(summary.temperature_done)
        observed(district, "temperature", "missed").inc(summary.temperature_due - summary.temperature_done)
        observed(district, "nat_sample", "done").inc(summary.nat_done)
        observed(district, "nat_sample", "missed").inc(summary.nat_due - summary.nat_done)
