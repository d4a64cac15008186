"""What the worker does with each record: decode, deduplicate, judge, emit and count.

A scan's way through the code, top to bottom in :meth:`Pipeline.on_scans`: the device topic's
record is decoded (:mod:`streams.contract.codec`) and its event ids claimed (:mod:`streams.concepts.intake`);
each scan is judged under the policy in force at its event time (:mod:`streams.rules`), its
decision written, its alerts admitted (:mod:`streams.concepts.alerting`), its recheck opened or closed
(:mod:`streams.concepts.rechecks`), and it is counted: in its checkpoint's three 100% window
(:mod:`streams.concepts.windows`), its checkpoint's status (:mod:`streams.concepts.silence`), its district minute
(:mod:`streams.concepts.minutes`) and the metrics. Each of those modules is one concept with its own
keyspace of the state table, and its own timer.

The :class:`Pipeline` holds no Faust objects: it writes outputs through a :class:`Sink`, keeps
state in :class:`PartitionedState` and is handed ``now`` by its caller, so agent tests and
timers drive it with plain values. Everything here concerns one source partition at a time
(scans and entries of a venue share a partition number).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from typing import cast

import msgspec

from streams.concepts.alerting import Alerts
from streams.concepts.intake import Intake, RecordRef, Sink
from streams.concepts.isolation import IsolationPoints
from streams.concepts.minutes import DistrictMinutes, PartialsSink
from streams.concepts.policies import PolicyFeed
from streams.concepts.rechecks import Recheck, Rechecks, recheck_key
from streams.concepts.register import Register
from streams.concepts.silence import Checkpoints
from streams.concepts.supervision import Supervision
from streams.concepts.windows import ComplianceWindows, WindowHandle
from streams.contract import topics
from streams.contract.codec import decode_entries, decode_finding_event, decode_observation, decode_scans
from streams.contract.encoding import encode
from streams.contract.models import EntryCount, Rejected, ScanEvent
from streams.contract.records import Decision, Recurrence
from streams.kafka.replica import Where
from streams.kafka.state import DedupMarks, PartitionedState
from streams.metrics import Metrics
from streams.rules.alerts import AlertDraft, Occurrence, person_dedup_key
from streams.rules.codes import CRITICAL, ISOLATION_BREACH_ALERT, MONITORING_RESTRICTED, POLICY_REJECTED
from streams.rules.compliance import MINUTE_S, DistrictMinute, StreamClock, window_start
from streams.rules.judge import is_late, judge
from streams.rules.management import alert_details, phase_on, restriction
from streams.rules.policy import Params, Policy
from streams.times import shanghai_day, utc_rfc3339

__all__ = ["PartialsSink", "Pipeline", "RecordRef", "Sink"]

MANAGEMENT_ALERTS = frozenset((ISOLATION_BREACH_ALERT, MONITORING_RESTRICTED))  # with the plan's details
POLICY_DISTRICT = "000000"  # the district of an alert about the whole service (POLICY_REJECTED)


class Pipeline:
    def __init__(self, policy: Policy, state: PartitionedState, seen: DedupMarks, sink: Sink,
                 partials: PartialsSink, metrics: Metrics, dedup_horizon_s: float,
                 is_active: Callable[[int], bool] = lambda p: True, idle_s: float = 10.0,
                 register: Register | None = None, policies: PolicyFeed | None = None) -> None:
        self.policy = policy
        self.policies = policies  # versions published to the running workers (None: the policy is fixed)
        # Every managed person's plan (the replicated register); an empty one in tests without it.
        self.register = register if register is not None else Register("")
        self.state = state
        self.seen = seen
        self._sink = sink
        self.metrics = metrics
        self.dedup_horizon_s = dedup_horizon_s
        self.is_active = is_active  # does this worker own the partition now (for timers)?
        self.clock = StreamClock(idle_s=idle_s)
        # The same clock over upload times (record timestamps): a checkpoint is silent only when
        # nothing of it was uploaded for a while either, not only nothing of recent event time.
        self.uploads = StreamClock(idle_s=idle_s)
        self.intake = Intake(seen, sink, metrics, dedup_horizon_s)
        self.alerts = Alerts(state, sink, metrics, dedup_horizon_s)
        self.minutes = DistrictMinutes(state, partials, self.clock, policy, self._owned)
        self.rechecks = Rechecks(state, self.alerts, self.minutes, self.clock, policy, self._owned)
        self.windows = ComplianceWindows(state, self.alerts, self.minutes, metrics, self.clock, self._owned)
        self.checkpoints = Checkpoints(state, self.alerts, self.minutes, self.clock, self.uploads, policy,
                                       self._owned)
        self.isolation = IsolationPoints(state, self.register, self.alerts, self.minutes, metrics, sink, self.clock,
                                         policy, self._owned)
        self.supervision = Supervision(state, self.alerts, self.minutes, metrics, sink, self.clock, policy,
                                       self._owned)
        self.alerts.tell(self.supervision.alerted)  # recurrences and automatic findings
        self._decided_at: tuple[float, str] = (0.0, "")  # `now` is one value per batch: format it once

    @property
    def sink(self) -> Sink:
        return self._sink

    @sink.setter
    def sink(self, sink: Sink) -> None:
        """Where every output goes, for every concept (tests record them)."""
        self._sink = self.intake.sink = self.alerts.sink = self.isolation.sink = self.supervision.sink = sink

    @property
    def partials(self) -> PartialsSink:
        return self.minutes.partials

    @partials.setter
    def partials(self, partials: PartialsSink) -> None:
        self.minutes.partials = partials

    def _owned(self) -> set[int]:
        """The source partitions this worker owns now (asked once per timer run, not per key)."""
        return {p for p in range(topics.SCANS.partitions) if self.is_active(p)}

    def flush(self) -> None:
        """Send state changes to the changelogs (before the batch's offsets can be committed)."""
        self.minutes.flush()
        self.seen.flush()
        self.state.flush()

    def release(self, partitions: Collection[int]) -> None:
        """Forget what is cached of ``partitions``, which this worker gave up: another worker may
        add to their state, and should one come back, its figures are what the table recovers
        and its stream time starts anew."""
        self.clock.forget(partitions)
        self.uploads.forget(partitions)
        self.minutes.release(partitions)

    # -- scans ---------------------------------------------------------------------------------

    def on_scan_record(self, value: bytes | None, ref: RecordRef, now: float) -> None:
        """Handle one record of ``hcs.scans.v1`` (a scan or a gateway batch)."""
        started = time.perf_counter()
        scans: list[ScanEvent] = []
        for i, item in enumerate(decode_scans(value, ref.key, now)):
            if type(item) is ScanEvent:
                scans.append(item)
            else:
                self.intake.dead_letter(item, ref, now, i)  # type: ignore[arg-type]
        if scans:
            self.on_scans(scans, ref.partition, now, ref.uploaded(now))
            # Each scan is timed as its share of the record (decoding included): two clock
            # reads and a histogram update per scan cost more than the rules of a plain scan.
            self.metrics.processing.observe_many((time.perf_counter() - started) / len(scans), len(scans))

    def on_scans(self, scans: Sequence[ScanEvent], partition: int, now: float, uploaded: float | None = None) -> None:
        """Judge the scans of one record, in order: each gets its decision, alerts and counts.
        ``uploaded``: when the record was sent (its Kafka timestamp; default ``now``).

        What consecutive scans share (the scans of a gateway batch are one venue's) is looked
        up once per run of scans sharing it and written back once: the policy in force, the
        checkpoint window and status, the district minute, the metric children. Redelivered
        event ids are dropped (and counted) first; a repeat inside the record is one too.
        """
        claimed = self.intake.claim([scan.event_id for scan in scans], topics.SCANS, partition, now)
        fresh = scans if len(claimed) == len(scans) else [scans[i] for i in claimed]
        if not fresh:
            return
        rechecks, opened_at, sink = self.rechecks, self.rechecks.opened_at, self.sink
        decided_at = self._now_text(now)
        # The partition's stream time, as each scan moves it on (written back at the end).
        stream_now = self.clock.watermark.get(partition, -math.inf)
        policy_for: tuple[str, str] | None = None  # (district, venue_type) of `params`, in force in [lo, hi)
        lo = hi = 0.0
        version, params = "", cast(Params, None)
        recheck_s = window_s = 0.0
        venue, venue_key, decisions = "", b"", cast(list[bytes], [])
        minute_district, minute_lo, minute_hi = "", 0.0, 0.0
        minute, reattributed = cast(DistrictMinute, None), False
        plans = self.register.plans
        windows: dict[tuple[str, float], WindowHandle] = {}
        reports: dict[str, _Report] = {}
        counts = _Counts(self.metrics)
        for scan in fresh:
            t, district, venue_type = scan.event_time, scan.district, scan.venue_type
            if t > stream_now:
                stream_now = t
            if policy_for is None or not (lo <= t < hi and policy_for == (district, venue_type)):
                version, params, lo, hi = self.policy.params_span(t, district, venue_type)
                policy_for = (district, venue_type)
                recheck_s = params.recheck_window_minutes * 60
                window_s = params.compliance_window_seconds
                if minute_district:  # a new venue type or policy within the minute in hand
                    counts.group(district, venue_type, minute, reattributed)
            open_key = recheck_key(scan.venue_id, scan.person_ref)
            opened = opened_at(open_key)
            managed = phase = None
            plan = plans.get(scan.person_ref) if plans else None
            if plan is not None and (phase := phase_on(plan, shanghai_day(t))) is not None:
                managed = restriction(plan, phase, scan.venue_id, params.isolation_action, params.monitoring_action)
            verdict = judge(scan, params, opened is not None and 0 <= t - opened <= recheck_s, managed)
            late = is_late(t, now)
            if verdict.ends_recheck:
                rechecks.close(open_key)
            if verdict.starts_recheck:
                rechecks.open(open_key, Recheck(t, now + recheck_s, scan.event_id, scan.checkpoint_id, district,
                                                venue_type, version), partition)

            if scan.venue_id != venue:
                if decisions:
                    sink.send_many(topics.DECISIONS, venue_key, decisions)
                venue, venue_key, decisions = scan.venue_id, scan.venue_id.encode(), []
            decisions.append(encode(Decision(
                scan.event_id, scan.checkpoint_id, venue, venue_type, district, scan.event_time_at, decided_at,
                verdict.decision, verdict.reasons, version, late)))
            if not (minute_lo <= t < minute_hi and district == minute_district):
                minute, reattributed = self.minutes.minute(partition, district, t)
                minute_district, minute_lo = district, window_start(t, MINUTE_S)
                minute_hi = minute_lo + MINUTE_S
                counts.group(district, venue_type, minute, reattributed)
            for spec in verdict.alerts:
                key = person_dedup_key(spec.kind, scan.person_ref, venue)
                details = (alert_details(plan, phase) if plan is not None and phase is not None
                           and spec.kind in MANAGEMENT_ALERTS else None)
                draft = AlertDraft(spec.kind, spec.severity, key, district, venue, version,
                                   checkpoint_id=scan.checkpoint_id, person_ref=scan.person_ref, reasons=spec.reasons,
                                   details=details)
                self.alerts.raise_alert(draft, scan.event_id, t, params.alert_dedup_minutes, partition, minute)

            start = window_start(t, window_s)
            window = windows.get((scan.checkpoint_id, start))
            if window is None:
                window = windows[(scan.checkpoint_id, start)] = self.windows.window(
                    scan.checkpoint_id, start, window_s, district, venue, venue_type, version, params,
                    partition, stream_now)
            if window.closed:
                self.metrics.three100_late(district).inc()  # its window closed without it
            window.counts.add_scan(scan.temperature_c, scan.mask)
            report = reports.get(scan.checkpoint_id)
            if report is None:
                reports[scan.checkpoint_id] = _Report(t, scan, version)
            else:
                report.add(t, scan)
            counts.add(verdict.decision, verdict.reasons, late, now - t)

        sink.send_many(topics.DECISIONS, venue_key, decisions)
        self.clock.observe(partition, stream_now, now)
        if uploaded is None:
            uploaded = now
        self.uploads.observe(partition, uploaded, now)
        for window in windows.values():
            window.save()
        for checkpoint_id, report in reports.items():
            last = report.last
            self.checkpoints.reported(checkpoint_id, report.first_t, report.last_t, uploaded, last.district,
                                      last.venue_id, last.venue_type, report.version, partition)
        counts.flush()

    def _now_text(self, now: float) -> str:
        if self._decided_at[0] != now:
            self._decided_at = (now, utc_rfc3339(now))
        return self._decided_at[1]

    # -- entry counts --------------------------------------------------------------------------

    def on_entries_record(self, value: bytes | None, ref: RecordRef, now: float) -> None:
        """Handle one record of ``hcs.entries.v1``: add the people counted to their checkpoint's window."""
        item = decode_entries(value, now)
        if isinstance(item, Rejected):
            self.intake.dead_letter(item, ref, now)
            return
        self.on_entries(item, ref.partition, now, ref.uploaded(now))

    def on_entries(self, count: EntryCount, partition: int, now: float, uploaded: float | None = None) -> None:
        if not self.intake.claim([count.event_id], topics.ENTRIES, partition, now):
            return
        if uploaded is None:
            uploaded = now
        self.clock.observe(partition, count.window_start, now)
        self.uploads.observe(partition, uploaded, now)
        version, params = self.policy.params(count.window_start, count.district, count.venue_type)
        # An interval is counted in the compliance window holding its start.
        size = params.compliance_window_seconds
        window = self.windows.window(count.checkpoint_id, window_start(count.window_start, size), size,
                                     count.district, count.venue_id, count.venue_type, version, params, partition,
                                     self.clock.now(partition, now))
        if window.closed:
            self.metrics.three100_late(count.district).inc()
        window.counts.add_entries(count.entries)
        window.save()
        self.checkpoints.reported(count.checkpoint_id, count.window_start, count.window_start, uploaded,
                                  count.district, count.venue_id, count.venue_type, version, partition)
        self.metrics.entries(count.district, count.venue_type).inc(count.entries)

    # -- isolation points ------------------------------------------------------------------------

    def on_observations_record(self, value: bytes | None, ref: RecordRef, now: float) -> None:
        """Handle one record of ``hcs.observations.v1``: count it in its point's day."""
        item = decode_observation(value, now)
        if isinstance(item, Rejected):
            self.intake.dead_letter(item, ref, now)
            return
        if not self.intake.claim([item.event_id], topics.OBSERVATIONS, ref.partition, now):
            return
        self.clock.observe(ref.partition, item.observed_at, now)
        self.uploads.observe(ref.partition, ref.uploaded(now), now)
        self.isolation.observe(item, ref.partition, now)

    def close_isolation_days(self, now: float) -> int:
        """Close the isolation points' days whose grace has passed."""
        return self.isolation.close(now)

    # -- findings --------------------------------------------------------------------------------

    def on_findings_record(self, value: bytes | None, ref: RecordRef, now: float) -> None:
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
        refused = self.supervision.on_event(item, ref.partition)
        if refused is not None:
            self.intake.dead_letter(Rejected(refused.reason, refused.detail, value or b"", redact="note"), ref, now)

    def on_recurrence_record(self, value: bytes | None, ref: RecordRef, now: float) -> None:
        """Handle one record of the internal recurrences topic (written by a worker: a bad one is a bug)."""
        self.supervision.on_recurrence(_RECURRENCE.decode(value or b""), ref.partition)

    def tick_findings(self, now: float) -> int:
        """Mark findings overdue and close look-backs, by their partitions' stream time."""
        return self.supervision.tick(now)

    def findings_counts(self) -> tuple[Counter[tuple[str, str]], Counter[str]]:
        """This worker's findings by (district, status), and the overdue ones by district."""
        return self.supervision.counts(self._owned())

    # -- the register ----------------------------------------------------------------------------

    def dead_letter_refused(self, now: float) -> int:
        """Dead-letter the records the replicated views refused (the register's, the policy
        versions'), once across the workers: each by the owner of the scans partition its
        topic partition maps to (every worker reads those topics whole), marked in that
        partition's dedup marks so that a restart does not repeat it within the dedup horizon.
        A refused policy version also raises POLICY_REJECTED, as once. Held until this worker
        owns a partition (its first assignment); records whose partition another worker owns
        are that worker's."""
        owned = self._owned()
        if not owned:
            return 0  # the views keep them meanwhile
        refused: list[tuple[Rejected, Where, str | None, topics.TopicSpec]] = [
            (rejected, where, None, topics.MANAGEMENT) for rejected, where in self.register.take_refused()]
        if self.policies is not None:
            refused += [(rejected, where, version, topics.POLICIES)
                        for rejected, where, version in self.policies.take_refused()]
        done = 0
        for rejected, where, version, spec in refused:
            state_partition = where.partition % topics.SCANS.partitions
            if state_partition not in owned:
                continue
            ref = RecordRef(spec, where.topic, where.partition, where.offset, where.key)
            if self.intake.dead_letter(rejected, ref, now, state_partition=state_partition) and version is not None:
                self._policy_rejected(version, rejected.detail, now, state_partition)
            done += 1
        return done

    def _policy_rejected(self, version: str, error: str, now: float, partition: int) -> None:
        in_force, _ = self.policy.params(now, "", "")
        # Of no district or venue: the city's (district 000000), for the hcs operators; not
        # counted in any district's minute.
        self.alerts.emit(AlertDraft(POLICY_REJECTED, CRITICAL, f"{POLICY_REJECTED}|{version}", POLICY_DISTRICT,
                                    topics.POLICIES.name, in_force, Occurrence(1, now, now, ()),
                                    details={"version": version, "error": error}), DistrictMinute(), partition)

    def managed_persons(self, now: float) -> Counter[tuple[str, str]]:
        """Persons under management on today's local date, by (managing district, phase)."""
        return self.register.managed_on(shanghai_day(now))

    # -- timers --------------------------------------------------------------------------------

    def expire_rechecks(self, now: float) -> int:
        """Raise FEVER_UNRESOLVED for every recheck window that ended without a second reading."""
        return self.rechecks.expire(now)

    def close_windows(self, now: float) -> int:
        """Emit THREE_100_VIOLATION for each closed checkpoint window with a miss; count outcomes."""
        return self.windows.close(now)

    def check_silent(self, now: float) -> int:
        """Raise CHECKPOINT_SILENT for checkpoints quiet on both clocks."""
        return self.checkpoints.check(now)

    def close_minutes(self, now: float) -> int:
        """Send this worker's district-minute parts that are over, then its watermarks."""
        return self.minutes.close(now)

    def sweep(self, now: float) -> int:
        """Forget dedup ids past the horizon, and alert memos idle for as long, to bound memory."""
        owned = self._owned()
        return self.intake.sweep(now, owned) + self.alerts.sweep(now, owned) + self.supervision.sweep(now, owned)


_RECURRENCE = msgspec.json.Decoder(Recurrence)


class _Report:
    """What a record's scans told of one checkpoint: first and latest event time, last scan."""

    __slots__ = ("first_t", "last", "last_t", "version")

    def __init__(self, t: float, scan: ScanEvent, version: str) -> None:
        self.first_t = self.last_t = t
        self.last = scan
        self.version = version  # the first scan's: a silent checkpoint's resolved alert is its

    def add(self, t: float, scan: ScanEvent) -> None:
        if t > self.last_t:
            self.last_t = t
        self.last = scan


class _Counts:
    """A record's counts (metrics, and the district minute's figures), summed per run of scans
    of one district, venue type and minute, and applied once per run."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.key: tuple[str, str, DistrictMinute, bool] | None = None
        self.decisions: list[str] = []
        self.reasons: list[str] = []
        self.lags: list[float] = []
        self.late = 0

    def group(self, district: str, venue_type: str, minute: DistrictMinute, reattributed: bool) -> None:
        key = (district, venue_type, minute, reattributed)
        # The minute by identity, not `==`: two minutes whose figures are equal are still two.
        if self.key is None or self.key[:2] != key[:2] or self.key[2] is not minute or self.key[3] != reattributed:
            self.flush()
            self.key = key

    def add(self, decision: str, reasons: tuple[str, ...], late: bool, lag: float) -> None:
        self.decisions.append(decision)
        if reasons:
            self.reasons.extend(reasons)
        self.lags.append(lag if lag > 0.0 else 0.0)
        if late:
            self.late += 1

    def flush(self) -> None:
        if self.key is None or not self.decisions:
            return
        m, (district, venue_type, minute, reattributed) = self.metrics, self.key
        decisions, reasons = Counter(self.decisions), Counter(self.reasons)
        for decision, n in decisions.items():
            m.scans(district, venue_type, decision).inc(n)
        for reason, n in reasons.items():
            m.scan_reasons(district, venue_type, reason).inc(n)
        if self.late:
            m.late(district).inc(self.late)
        m.lag(district).observe_all(self.lags)
        # A scan counted in a later minute than its own (that one was sent) counts as late there.
        minute.add_decisions(len(self.decisions), decisions, reasons,
                             len(self.decisions) if reattributed else self.late)
        self.decisions, self.reasons, self.lags, self.late = [], [], [], 0
