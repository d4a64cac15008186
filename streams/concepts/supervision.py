"""Closed-loop supervision: every finding of the venues of a partition, moved by inspectors'
events, by the alerts raised at its venue, and by the partition's stream time.

Findings (``hcs.findings.v1``, keyed by venue: co-partitioned with scans) are applied by the
pure state machine of :mod:`streams.rules.findings`; a refused action is handed back to be
dead-lettered. Every alert the worker emits is told here (the wiring has :meth:`Alerts.tell` it): at a
venue, it may be a recurrence of the venue's verified findings (reopening them), and a
checkpoint's ``auto_finding_violations``-th THREE_100_VIOLATION window of a local day opens an
automatic THREE_100 finding for its venue. An ISOLATION_BREACH by a centralized isolation
point's resident happens at another venue, often of another partition: it travels to the
point's partition on the internal recurrences topic. Deadlines and look-backs are met by the
partition's stream time (:meth:`Supervision.tick`). Every change writes the finding's state,
with its whole history, to ``hcs.finding-status.v1``.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from streams.concepts.alerting import Alerts
from streams.concepts.base import Input, RecordRef, Sink, Timer
from streams.concepts.intake import Intake
from streams.concepts.minutes import DistrictMinutes
from streams.contract import topics
from streams.contract.codec import decode_finding_event
from streams.contract.encoding import encode
from streams.contract.models import FindingEvent, Rejected
from streams.contract.records import Alert, FindingStatus, Recurrence, Step
from streams.kafka import rekeying
from streams.kafka.state import PartitionedState
from streams.metrics import Metrics
from streams.rules import codes as c
from streams.rules import findings as rules
from streams.rules.alerts import AlertDraft, Occurrence
from streams.rules.compliance import StreamClock
from streams.rules.findings import Finding, Refused
from streams.rules.policy import Params, Policy
from streams.times import DAY_S, rfc3339, shanghai_date, shanghai_day

FINDING_PREFIX = "s|"  # venue_id|finding_id -> Finding not ended (by venue: an event names the finding's venue)
ENDED_PREFIX = "se|"  # venue_id|finding_id -> Finding CLOSED or CANCELLED, kept a while to refuse actions on it
VERIFIED_PREFIX = "si|"  # venue_id -> [finding key] of its VERIFIED findings: what an alert there may reopen
TALLY_PREFIX = "sv|"  # checkpoint_id -> [local day, THREE_100_VIOLATION windows of that day]
ENDS = (rules.CLOSED, rules.CANCELLED)
TICK_S = 10.0  # deadlines and look-backs are met within this long (by stream time)
SWEEP_S = 60.0
KEEP_ENDED_S = 35 * DAY_S  # an ended finding is kept (refusing actions on it) this long, by stream time


class Supervision:
    def __init__(self, state: PartitionedState, intake: Intake, alerts: Alerts, minutes: DistrictMinutes,
                 metrics: Metrics, sink: Sink, clock: StreamClock, policy: Policy,
                 owned: Callable[[], set[int]]) -> None:
        self.intake = intake
        self.findings = state.typed(FINDING_PREFIX, Finding)
        # When time next changes a live finding (a deadline, a look-back), by the partition's stream time.
        self.timeline = self.findings.due_index(
            lambda f: rules.due(f.status, f.overdue, f.deadline, f.look_back_at))
        self.ended = state.typed(ENDED_PREFIX, Finding)
        self.verified = state.keyspace(VERIFIED_PREFIX)
        self.tallies = state.keyspace(TALLY_PREFIX)
        self.alerts = alerts
        self.minutes = minutes
        self.metrics = metrics
        self.sink = sink
        self.clock = clock
        self.policy = policy
        self.owned = owned

    def inputs(self) -> Sequence[Input]:
        return (Input("supervise_findings", topics.FINDINGS, self.on_record),
                # Recurrences raised at another venue's partition for this one's findings.
                Input("follow_recurrences", topics.RECURRENCES, self.on_recurrence_record))

    def timers(self) -> Sequence[Timer]:
        return (Timer(TICK_S, self.tick), Timer(SWEEP_S, lambda now: self.sweep(now, self.owned())))

    # -- inspectors' events ----------------------------------------------------------------------

    def on_record(self, value: bytes | None, ref: RecordRef, now: float) -> None:
        """Handle one record of ``hcs.findings.v1``: apply it to its finding, or dead-letter it."""
        item = decode_finding_event(value, now)
        if isinstance(item, Rejected):
            # An inspector's note may name people: kept out of the dead letter, unless the record
            # was refused for another field's value (an ID number), which is hidden instead.
            if not item.redact and item.reason != "NOT_JSON":
                item = msgspec.structs.replace(item, redact="note")
            self.intake.dead_letter(item, ref, now)
            return
        if not self.intake.claim([item.event_id], topics.FINDINGS, ref.partition, now):
            return
        self.clock.observe(ref.partition, item.at, now)
        refused = self.on_event(item, ref.partition)
        if refused is not None:
            self.intake.dead_letter(Rejected(refused.reason, refused.detail, value or b"", redact="note"), ref, now)

    def on_recurrence_record(self, value: bytes | None, ref: RecordRef, now: float) -> None:
        """Handle one record of the internal recurrences topic (written by a worker: a bad one is a bug)."""
        self.on_recurrence(_RECURRENCE.decode(value or b""), ref.partition)

    def on_event(self, event: FindingEvent, partition: int) -> Refused | None:
        """Apply one finding event; a refused one changes nothing and is returned."""
        key = _key(event.venue_id, event.finding_id)
        finding = self._get(key)
        _, params = self.policy.params(event.at, event.district, event.venue_type)
        moved = rules.apply(finding, event, params.rectify_deadline_hours, params.lookback_days)
        if isinstance(moved, Refused):
            return moved
        self._save(key, finding, moved, partition)
        return None

    # -- what the stream sees --------------------------------------------------------------------

    def alerted(self, alert: Alert, at: float, partition: int, venue_type: str | None) -> None:
        """An alert was emitted: count it for its venue's findings (and its checkpoint's day)."""
        kind = alert.kind
        if kind == c.ISOLATION_BREACH_ALERT:
            details = alert.details or {}
            point = details.get("isolation_point_id")
            if details.get("phase") == "centralized_isolation" and isinstance(point, str):
                # Its point's findings live with the point's partition: sent there.
                rekeying.forward(self.sink.send, topics.RECURRENCES, point, encode(Recurrence(point, kind, at)))
            return
        if kind not in _RECURRENT:
            return
        self.recurrence(alert.venue_id, kind, alert.details, at, partition)
        if kind == c.THREE_100_VIOLATION and alert.checkpoint_id is not None and venue_type is not None:
            self._tally(alert, venue_type, at, partition)

    def recurrence(self, venue_id: str, kind: str, details: dict[str, Any] | None, at: float,
                   partition: int) -> int:
        """An alert of ``kind`` at ``venue_id`` at ``at``: reopen the verified findings it recurs; how many."""
        reopened = 0
        for key in list(self.verified.get(VERIFIED_PREFIX + venue_id) or ()):
            finding = self.findings.get(key)
            if finding is None or finding.status != rules.VERIFIED:
                continue
            if not rules.is_recurrence(finding.problem, kind, details):
                continue
            _, params = self.policy.params(at, finding.district, finding.venue_type)
            moved = rules.recur(finding, at, params.rectify_deadline_hours)
            if moved is not None:
                self._save(key, finding, moved, partition)
                reopened += 1
        return reopened

    def on_recurrence(self, recurrence: Recurrence, partition: int) -> int:
        """A recurrence raised elsewhere for this partition's venue (the internal topic)."""
        return self.recurrence(recurrence.venue_id, recurrence.kind, None, recurrence.at, partition)

    def _tally(self, alert: Alert, venue_type: str, at: float, partition: int) -> None:
        """One more violation window of the checkpoint's local day; the n-th opens the venue's
        automatic finding of that day, unless it has one."""
        checkpoint = alert.checkpoint_id or ""
        day = shanghai_day(at - 1e-6)  # a window is of the day it ends in (an end at midnight: the day before)
        tally = self.tallies.get(TALLY_PREFIX + checkpoint)
        count = tally[1] + 1 if tally is not None and tally[0] == day else 1
        self.tallies.set(TALLY_PREFIX + checkpoint, [day, count], partition)
        _, params = self.policy.params(at, alert.district, venue_type)
        if count < params.auto_finding_violations:
            return
        finding = rules.auto_finding(alert.venue_id, venue_type, alert.district, shanghai_date(day), at,
                                     params.rectify_deadline_hours)
        key = _key(alert.venue_id, finding.finding_id)
        if self._get(key) is None:
            self._save(key, None, finding, partition)

    def tick(self, now: float) -> int:
        """Deadlines and look-backs met by each owned partition's stream time; returns the changes."""
        changed = 0
        for partition in sorted(self.owned()):
            stream_now = self.clock.now(partition, now)
            for key in self.timeline.pop_due(partition, stream_now):
                finding = self.findings.get(key)
                if finding is not None and self._tick(key, finding, partition, stream_now):
                    changed += 1
        return changed

    def _tick(self, key: str, finding: Finding, partition: int, stream_now: float) -> bool:
        """Move a finding by time if its moment has come; else index it at that moment."""
        _, params = self.policy.params(finding.opened_at, finding.district, finding.venue_type)
        settle_s = _settle_s(params)
        moved = rules.tick(finding, stream_now, settle_s)
        if moved is not None:
            self._save(key, finding, moved, partition)
            return True
        at = rules.moves_at(finding, settle_s)
        if at is not None:  # a look-back settling, or a deadline reached but not passed
            self.timeline.defer(key, partition, at)
        return False

    def sweep(self, now: float, owned: set[int]) -> int:
        """Forget ended findings and checkpoints' tallies past what can still be asked of them."""
        ended = [key for key, partition, finding in self.ended.items()
                 if partition in owned and self.clock.now(partition, now) - finding.updated_at > KEEP_ENDED_S]
        tallies = [key for key, partition, raw in self.tallies.items()
                   if partition in owned and shanghai_day(self.clock.now(partition, now)) > raw[0] + 1]
        for key in ended:
            self.ended.delete(key)
        for key in tallies:
            self.tallies.delete(key)
        return len(ended) + len(tallies)

    def counts(self, owned: set[int]) -> tuple[Counter[tuple[str, str]], Counter[str]]:
        """This worker's findings by (district, status), and the overdue ones by district."""
        by_status: Counter[tuple[str, str]] = Counter()
        overdue: Counter[str] = Counter()
        for _, partition, finding in itertools.chain(self.findings.items(), self.ended.items()):
            if partition in owned:
                by_status[(finding.district, finding.status)] += 1
                if finding.overdue:
                    overdue[finding.district] += 1
        return by_status, overdue

    # -- one change ------------------------------------------------------------------------------

    def _get(self, key: str) -> Finding | None:
        finding = self.findings.get(key)
        return finding if finding is not None else self.ended.get(_ended(key))

    def _save(self, key: str, before: Finding | None, after: Finding, partition: int) -> None:
        """Keep ``after``, write its status, count its new steps and raise what they call for."""
        if after.status in ENDS:
            self.findings.delete(key)
            self.ended.set(_ended(key), after, partition)
        else:
            self.findings.set(key, after, partition)
        was, now = before is not None and before.status == rules.VERIFIED, after.status == rules.VERIFIED
        if was != now:
            index = VERIFIED_PREFIX + after.venue_id
            keys = [k for k in self.verified.get(index) or () if k != key] + ([key] if now else [])
            if keys:
                self.verified.set(index, keys, partition)
            else:
                self.verified.delete(index)
        self.sink.send(topics.FINDING_STATUS, after.finding_id.encode(), encode(status_record(after)))
        steps = after.history[len(before.history) if before is not None else 0:]
        for action, at in steps:
            self.metrics.finding_transitions(after.district, action).inc()
            if action in _ALERTING:
                self._alert(_ALERTING[action], after, at, partition)

    def _alert(self, kind: str, finding: Finding, at: float, partition: int) -> None:
        version, _ = self.policy.params(at, finding.district, finding.venue_type)
        count = finding.repeat_count
        self.alerts.emit(AlertDraft(
            kind, rules.alert_severity(kind, count), f"{kind}|{finding.finding_id}|{count}", finding.district,
            finding.venue_id, version, Occurrence(1, at, at, ()), venue_type=finding.venue_type,
            details={"finding_id": finding.finding_id, "problem": finding.problem, "source": finding.source,
                     "repeat_count": count, "deadline": rfc3339(finding.deadline)}),
            self.minutes.minute(partition, finding.district, at)[0], partition)


_RECURRENCE = msgspec.json.Decoder(Recurrence)
_RECURRENT = frozenset((c.THREE_100_VIOLATION, c.NAT_MISSED, c.OBSERVATION_MISSED))
_ALERTING = {"overdue": c.FINDING_OVERDUE, "reopen": c.FINDING_REOPENED}


def _key(venue_id: str, finding_id: str) -> str:
    return f"{FINDING_PREFIX}{venue_id}|{finding_id}"


def _ended(key: str) -> str:
    """The key of an ended finding, from its key while it was live."""
    return ENDED_PREFIX + key[len(FINDING_PREFIX):]


def _settle_s(params: Params) -> float:
    """How long after a look-back a recurrence from before it may still be raised: a compliance
    window's grace, an isolation day's."""
    return float(max(params.compliance_grace_seconds, params.observation_grace_minutes * 60))


def status_record(finding: Finding) -> FindingStatus:
    """The ``hcs.finding-status.v1`` record of a finding's state."""
    return FindingStatus(
        finding.finding_id, finding.venue_id, finding.venue_type, finding.district, finding.problem, finding.source,
        finding.status, finding.repeat_count, rfc3339(finding.deadline), finding.overdue,
        None if finding.look_back_at is None else rfc3339(finding.look_back_at), rfc3339(finding.opened_at),
        rfc3339(finding.updated_at), [Step(action, rfc3339(at)) for action, at in finding.history])
