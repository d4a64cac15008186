"""Source tracing: every case traced over the visits of the venue partitions this worker owns.

Cases (``hcs.cases.v1``) are few: every worker holds them all (a replica fed by a replicated view,
as the register is). Every second, each case not yet traced on a venue partition this worker owns
is traced there (:meth:`Tracing.trace`): the case's visits in its window (the person index), then
at each of their venues everyone whose visit overlaps one of the case's by at least
``contact_min_overlap_minutes`` (:mod:`streams.rules.tracing`). Each (case, contact, venue) gets
one Exposure, claimed in the partition's dedup marks in the same write as the Exposure itself (one
transaction): exactly once across restarts and rebalances. The partition marks the case traced
(``tr|``, with the case's visits there by venue) and reports to the internal trace-reports topic,
keyed by the case: the owner of the case's partition there puts the reports together, and when
every venue partition has reported, writes the Trace ``complete`` and raises ``CASE_TRACED``.

Visits read afterwards (a device's late upload) are told here by :class:`~streams.concepts.visits.Visits`:
a visit at a venue where a traced case was adds the exposure it makes; a visit of a case itself,
in its window, adds its venue to the trace there. A positive NAT the worker reads (a scan's
certificate, an isolation point's sample) starts a case of its own (``nat|<event_id>``),
published on ``hcs.cases.v1`` once per person and sample.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import msgspec

from streams.concepts.alerting import Alerts
from streams.concepts.base import Input, RecordRef, Sink, Timer
from streams.concepts.visits import Visits
from streams.contract import topics
from streams.contract.codec import NAT_CASE_PREFIX, decode_case
from streams.contract.encoding import encode
from streams.contract.models import CaseReport, Rejected
from streams.contract.records import Exposure, Trace, TraceReport
from streams.kafka.replica import InvalidRecord, Replica, Where
from streams.kafka.state import PartitionedState
from streams.metrics import Metrics
from streams.rules.alerts import AlertDraft, Occurrence
from streams.rules.codes import CASE_TRACED, WARNING
from streams.rules.compliance import DistrictMinute
from streams.rules.policy import Params, Policy
from streams.rules.tracing import DAY_S, Contact, Span, Visit, contact_at_venue, contacts_at_venue, trace_window
from streams.times import utc_rfc3339

log = logging.getLogger(__name__)

TICK_S = 1.0  # cases not yet traced on an owned partition are traced this often
FORGET_S = 600.0  # what tracing keeps past its use is forgotten this often
TRACE_PREFIX = "tr|"  # state: case_id -> TraceMark, on each venue partition that traced it
COMBINE_PREFIX = "tc|"  # state: case_id -> Combined, on the case's trace-reports partition
EXPOSED_PREFIX = "x|"  # state: case_id|person_ref|venue_id of an exposure written -> until when kept
NAT_CASE_MARK = "n|"  # state: person_ref|sampled_at of a positive NAT made a case -> until when kept
MAX_DWELL_S = 1440 * 60.0  # the longest a visit may last (the policy's bound on dwell_minutes)


class TraceMark(msgspec.Struct, array_like=True, gc=False):
    """A case traced on one venue partition: when, and the case's visits there by venue."""

    started_at: float
    spans: dict[str, list[tuple[float, float]]]


class Combined(msgspec.Struct, array_like=True, gc=False):
    """A case's trace as the venue partitions' reports made it so far."""

    person_ref: str
    district: str
    sources: list[int]
    visits: int
    venues: list[str]
    contacts: list[str]
    started_at: float
    completed_at: float | None = None


_REPORT = msgspec.json.Decoder(TraceReport)


class Tracing:
    """Cases traced over this worker's venue partitions; their reports put together into Traces."""

    def __init__(self, policy: Policy, visits: Visits, state: PartitionedState, alerts: Alerts,
                 sink: Sink, metrics: Metrics, owned: Callable[[], set[int]], topic: str = "",
                 sources: int = topics.SCANS.partitions) -> None:
        self.policy, self.visits, self.alerts = policy, visits, alerts
        self.sources = sources  # the venue partitions: a trace is complete once each has reported
        self.sink, self.metrics, self.owned = sink, metrics, owned
        self.cases: Replica[str, CaseReport] = Replica("cases", topic, self._decode, on_change=self._changed,
                                                       on_invalid=self._refused)
        self.marks = state.typed(TRACE_PREFIX, TraceMark)
        self.combined = state.typed(COMBINE_PREFIX, Combined)
        # Exposures written (x|case|person|venue) and NAT cases made (n|person|sampled_at), each
        # until it can no longer be made again: (an expiry; kept in the state table, not among the
        # dedup marks, whose sweep expects the order they were made to be the order they expire).
        self.exposed = state.keyspace(EXPOSED_PREFIX)
        self.nat_made = state.keyspace(NAT_CASE_MARK)
        # Each kept until it can no longer matter, by due-time indexes: an exposure's mark until
        # its contact's flag and the visits it came from are gone; a trace's mark and its reports
        # as long as visits are kept after it.
        self._expiring = [space.due_index(lambda until: float(until), monotone=True)
                          for space in (self.exposed, self.nat_made)]
        self._marks_expiring = self.marks.due_index(self._mark_until, monotone=True)
        self._combined_expiring = self.combined.due_index(self._combined_until, monotone=True)
        self.by_person: dict[str, list[str]] = {}  # a case's person -> its case ids
        self._nat_cases: dict[tuple[str, float], str] = {}  # (person, sampled_at) -> the NAT case kept
        self._done: set[tuple[int, str]] = set()  # (partition, case_id) known traced
        self._at_venue: dict[int, dict[str, set[str]]] | None = None  # partition -> venue -> traced case ids
        self._refused_records: list[tuple[Rejected, Where]] = []

    def inputs(self) -> Sequence[Input]:
        return (Input("combine_traces", topics.TRACE_REPORTS, self.on_report),)

    def timers(self) -> Sequence[Timer]:
        return (Timer(TICK_S, self.trace_pending), Timer(FORGET_S, self.forget))

    def _retention_s(self, at: float) -> float:
        return self.policy.defaults_at(at).visit_retention_days * DAY_S

    def _mark_until(self, mark: TraceMark) -> float:
        return mark.started_at + self._retention_s(mark.started_at)

    def _combined_until(self, combined: Combined) -> float:
        return combined.started_at + self._retention_s(combined.started_at)

    def forget(self, now: float) -> int:
        """Forget what tracing keeps past its use: exposure and NAT-case marks past their expiry,
        trace marks and reports past the visit retention after them, cases reported before it
        (this worker's copy: the topic keeps its own retention)."""
        forgotten = 0
        for partition in sorted(self.owned()):
            for space, due in ((self.exposed, self._expiring[0]), (self.nat_made, self._expiring[1]),
                               (self.marks, self._marks_expiring), (self.combined, self._combined_expiring)):
                for key in due.pop_due(partition, now):
                    space.delete(key)
                    forgotten += 1
        old = [case_id for case_id, case in self.cases.data.items()
               if case.reported_at < now - self._retention_s(now)]
        for case_id in old:
            case = self.cases.data.pop(case_id)
            cases = self.by_person.get(case.person_ref, [])
            if case_id in cases:
                cases.remove(case_id)
                if not cases:
                    del self.by_person[case.person_ref]
            self._done = {(p, c) for p, c in self._done if c != case_id}
        if forgotten or old:
            self._at_venue = None  # the venues of traced cases, read anew
        return forgotten + len(old)

    # -- the cases, on every worker ----------------------------------------------------------

    def apply(self, key: bytes | None, value: bytes | None, partition: int = 0, offset: int = -1) -> None:
        """One case record (what the view does with each; also for tests without a broker)."""
        self.cases.apply(key, value, partition, offset)

    def _decode(self, key: bytes | None, value: bytes | None) -> tuple[str, CaseReport | None]:
        case = decode_case(value)
        if isinstance(case, Rejected):
            raise InvalidRecord(case.detail, case)
        if case.case_id in self.cases.data:
            return case.case_id, self.cases.data[case.case_id]  # a case already traced is not traced again
        if case.case_id.startswith(NAT_CASE_PREFIX):
            kept = self._nat_cases.setdefault((case.person_ref, case.sampled_at), case.case_id)
            if kept != case.case_id:  # the same sample read at another venue partition: one case
                return case.case_id, None
        return case.case_id, case

    def _changed(self, case_id: str, old: CaseReport | None, new: CaseReport | None) -> None:
        if new is not None and old is None:
            self.by_person.setdefault(new.person_ref, []).append(case_id)

    def _refused(self, where: Where, value: bytes | None, error: ValueError) -> None:
        refused = getattr(error, "refused", None)
        if isinstance(refused, Rejected):
            self._refused_records.append((refused, where))

    def take_refused(self) -> list[tuple[Rejected, Where]]:
        """The invalid case records read since the last call (to be dead-lettered once)."""
        taken, self._refused_records = self._refused_records, []
        return taken

    # -- tracing on a venue partition --------------------------------------------------------

    def trace_pending(self, now: float) -> int:
        """Trace every case not yet traced on a partition this worker owns."""
        owned, done, traced = sorted(self.owned()), self._done, 0
        reported_since = now - self._retention_s(now)  # before: every visit it could have is gone
        for case_id, case in list(self.cases.data.items()):
            if case.reported_at < reported_since:
                continue
            for partition in owned:
                if (partition, case_id) in done:
                    continue
                if self.marks.get(self._mark_key(case_id, partition)) is None:
                    self.trace(case, partition, now)
                    traced += 1
                done.add((partition, case_id))
        return traced

    def trace(self, case: CaseReport, partition: int, now: float) -> TraceReport:
        """Trace ``case`` over ``partition``'s visits: exposures, the mark, the report."""
        params = self.policy.defaults_at(case.reported_at)
        window = trace_window(case.sampled_at, case.onset_at, case.reported_at, params.trace_lookback_days)
        own = list(self.visits.log.of_person(partition, case.person_ref, *window))
        spans: dict[str, list[Span]] = {}
        for visit in own:
            spans.setdefault(visit.venue_id, []).append((float(visit.start), float(visit.end)))
        contacts: set[str] = set()
        for venue_id, case_spans in spans.items():
            contacts |= self._contacts_at(case, partition, venue_id, case_spans, params, now)
        self.marks.set(self._mark_key(case.case_id, partition), TraceMark(now, {v: list(s) for v, s in spans.items()}),
                       partition)
        self._index_venues(partition, case.case_id, spans)
        report = TraceReport(case.case_id, case.person_ref, case.district, partition, len(own), sorted(spans),
                             sorted(contacts), now)
        self.sink.send(topics.TRACE_REPORTS, case.case_id.encode(), encode(report))
        return report

    def _mark_key(self, case_id: str, partition: int) -> str:
        """A case's mark on one partition (each partition that traced it has one, on itself)."""
        return f"{TRACE_PREFIX}{case_id}|{partition}"

    def _contacts_at(self, case: CaseReport, partition: int, venue_id: str, case_spans: list[Span],
                     params: Params, now: float) -> set[str]:
        """Everyone who was with the case at ``venue_id`` (exposures written for the new ones)."""
        low, high = min(s for s, _ in case_spans) - MAX_DWELL_S, max(e for _, e in case_spans)
        others = [(v.person_ref, (float(v.start), float(v.end)))
                  for v in self.visits.log.at_venue(partition, venue_id, low, high)]
        found = contacts_at_venue(case_spans, others, case.person_ref, params.contact_min_overlap_minutes * 60)
        if found:
            self._expose(case, partition, venue_id, found, params, now)
        return set(found)

    def _expose(self, case: CaseReport, partition: int, venue_id: str, found: dict[str, Contact],
                params: Params, now: float) -> None:
        """An Exposure for each contact not exposed at this venue for this case before."""
        expires = now + (params.visit_retention_days + params.contact_flag_days) * DAY_S
        meta = self.visits.venue(venue_id)
        venue_type, district = (meta.venue_type, meta.district) if meta is not None else ("other", case.district)
        traced_at = utc_rfc3339(now)
        for person in sorted(found):
            exposure_id = f"{case.case_id}|{person}|{venue_id}"
            if self.exposed.get(EXPOSED_PREFIX + exposure_id) is not None:
                continue
            self.exposed.set(EXPOSED_PREFIX + exposure_id, expires, partition)
            contact = found[person]
            self.sink.send(topics.EXPOSURES, person.encode(), encode(Exposure(
                exposure_id, case.case_id, person, venue_id, venue_type, district,
                utc_rfc3339(contact.first_overlap_at), round(contact.overlap_s / 60, 2), traced_at)))
            self.metrics.exposures(district).inc()

    # -- visits read after a trace ------------------------------------------------------------

    def _index_venues(self, partition: int, case_id: str, spans: dict[str, list[Span]]) -> None:
        if self._at_venue is None:
            return  # built from the marks when first needed
        by_venue = self._at_venue.setdefault(partition, {})
        for venue_id in spans:
            by_venue.setdefault(venue_id, set()).add(case_id)

    def _venues(self) -> dict[int, dict[str, set[str]]]:
        if self._at_venue is None:
            self._at_venue = {}
            for key, partition, mark in self.marks.items():
                case_id = key[len(TRACE_PREFIX):].rsplit("|", 1)[0]
                by_venue = self._at_venue.setdefault(partition, {})
                for venue_id in mark.spans:
                    by_venue.setdefault(venue_id, set()).add(case_id)
        return self._at_venue

    def reindex(self) -> None:
        """A table recovery filled the state: the venues of traced cases are read anew."""
        self._at_venue = None
        self._done.clear()

    def visited(self, partition: int, visits: list[Visit], now: float) -> None:
        """Visits just stored: a late one may make a contact of a traced case, or be a case's own."""
        if not self.cases.data:
            return
        traced = self._venues().get(partition, {})
        by_person = self.by_person
        for visit in visits:
            if traced and visit.venue_id in traced:
                for case_id in sorted(traced[visit.venue_id]):
                    self._late_contact(case_id, partition, visit, now)
            if visit.person_ref in by_person:
                for case_id in by_person[visit.person_ref]:
                    self._late_case_visit(case_id, partition, visit, now)

    def _late_contact(self, case_id: str, partition: int, visit: Visit, now: float) -> None:
        """A visit at a venue the case visited: the exposure it makes, if any, from the person's own
        visits there (their index), never a read of the whole venue again."""
        case, mark = self.cases.data.get(case_id), self.marks.get(self._mark_key(case_id, partition))
        if case is None or mark is None or visit.person_ref == case.person_ref:
            return
        params = self.policy.defaults_at(case.reported_at)
        case_spans = [(start, end) for start, end in mark.spans.get(visit.venue_id, ())]
        min_overlap_s = params.contact_min_overlap_minutes * 60
        if contact_at_venue(case_spans, [(float(visit.start), float(visit.end))], min_overlap_s) is None:
            return
        low, high = min(s for s, _ in case_spans) - MAX_DWELL_S, max(e for _, e in case_spans)
        own = [(float(v.start), float(v.end)) for v in self.visits.log.of_person(partition, visit.person_ref, low, high)
               if v.venue_id == visit.venue_id]
        contact = contact_at_venue(case_spans, own, min_overlap_s)
        if contact is not None:
            self._expose(case, partition, visit.venue_id, {visit.person_ref: contact}, params, now)

    def _late_case_visit(self, case_id: str, partition: int, visit: Visit, now: float) -> None:
        case, key = self.cases.data.get(case_id), self._mark_key(case_id, partition)
        mark = self.marks.get(key)
        if case is None or mark is None:
            return  # not traced here yet: the trace will read this visit
        params = self.policy.defaults_at(case.reported_at)
        low, high = trace_window(case.sampled_at, case.onset_at, case.reported_at, params.trace_lookback_days)
        if not low <= visit.start <= high:
            return
        spans = {venue: list(s) for venue, s in mark.spans.items()}
        spans.setdefault(visit.venue_id, []).append((float(visit.start), float(visit.end)))
        self.marks.set(key, TraceMark(mark.started_at, spans), partition)
        self._index_venues(partition, case_id, {visit.venue_id: spans[visit.venue_id]})
        self._contacts_at(case, partition, visit.venue_id, spans[visit.venue_id], params, now)

    # -- a positive NAT read: a case of its own --------------------------------------------------

    def nat_positive(self, event_id: str, person_ref: str, district: str, sampled_at: float, partition: int,
                     now: float) -> bool:
        """Publish case ``nat|<event_id>`` for a positive NAT read now, once per person and sample
        on this partition (another partition's copy is dropped by every worker's replica)."""
        params = self.policy.defaults_at(now)
        if not params.trace_on_nat_positive:
            return False
        mark = f"{NAT_CASE_MARK}{person_ref}|{sampled_at:.0f}"
        if self.nat_made.get(mark) is not None:
            return False
        self.nat_made.set(mark, now + params.visit_retention_days * DAY_S, partition)
        value = {"schema": "hcs.case.v1", "event_id": f"{NAT_CASE_PREFIX}{event_id}",
                 "case_id": f"{NAT_CASE_PREFIX}{event_id}", "person_ref": person_ref, "district": district,
                 "classification": "asymptomatic", "sampled_at": utc_rfc3339(sampled_at), "onset_at": None,
                 "reported_at": utc_rfc3339(max(now, sampled_at))}
        self.sink.send(topics.CASES, person_ref.encode(), encode(value))
        return True

    # -- the reports, put together on the case's partition -------------------------------------

    def on_report(self, value: bytes | None, ref: RecordRef, now: float) -> None:
        """One venue partition's report of a case (the internal topic, keyed by the case)."""
        try:
            report = _REPORT.decode(value or b"")
        except msgspec.DecodeError:
            log.warning("trace report %s[%d]@%d: not a report, skipped", ref.topic, ref.partition, ref.offset)
            return
        key = COMBINE_PREFIX + report.case_id
        combined = self.combined.get(key)
        if combined is None:
            combined = Combined(report.person_ref, report.district, [], 0, [], [], report.started_at)
        if report.source in combined.sources or combined.completed_at is not None:
            return  # a report sent again (a restart): counted once
        combined = Combined(combined.person_ref, combined.district, sorted([*combined.sources, report.source]),
                            combined.visits + report.visits, sorted(set(combined.venues) | set(report.venues)),
                            sorted(set(combined.contacts) | set(report.contacts)),
                            min(combined.started_at, report.started_at))
        if len(combined.sources) >= self.sources:
            combined.completed_at = now
        self.combined.set(key, combined, ref.partition)
        self._trace_out(report.case_id, combined, ref.partition, now)

    def _trace_out(self, case_id: str, combined: Combined, partition: int, now: float) -> None:
        done = combined.completed_at is not None
        trace = Trace(case_id, combined.person_ref, combined.district, "complete" if done else "running",
                      combined.visits, len(combined.venues), len(combined.contacts), utc_rfc3339(combined.started_at),
                      utc_rfc3339(now) if done else None)
        self.sink.send(topics.TRACES, case_id.encode(), encode(trace))
        if not done:
            return
        self.metrics.traces(combined.district).inc()
        self.metrics.trace_seconds.observe(max(0.0, now - combined.started_at))
        version, _ = self.policy.params(now, "", "")
        details = {"visits": combined.visits, "venues": len(combined.venues), "contacts": len(combined.contacts)}
        self.alerts.emit(AlertDraft(CASE_TRACED, WARNING, f"{CASE_TRACED}|{case_id}", combined.district,
                                    topics.CASES.name, version, Occurrence(1, now, now, ()), details=details),
                         DistrictMinute(), partition)
