"""Judging scans: a scan's way through the worker, top to bottom.

:meth:`Judging.on_record` decodes a record of ``hcs.scans.v1`` (one scan or a gateway batch;
:mod:`streams.contract.codec`), dead-letters what cannot be accepted and claims the event ids
(:mod:`streams.concepts.intake`). :meth:`Judging.on_scans` then judges each new scan under the
policy in force at its event time (:func:`streams.rules.judge.judge`), writes its decision,
raises its alerts (:mod:`streams.concepts.alerting`), opens or closes its fever recheck
(:mod:`streams.concepts.rechecks`), and adds it to each concept that counts it: its
checkpoint's three 100% window (:mod:`streams.concepts.windows`), its checkpoint's status
(:mod:`streams.concepts.silence`), its district minute (:mod:`streams.concepts.minutes`) and the
metrics. The worker flushes the state once per batch.

What consecutive scans share (a gateway batch is one venue's) is looked up once per run of scans
sharing it: the policy in force, the checkpoint window and status, the district minute, the
metric children.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from typing import cast

from streams.concepts.alerting import Alerts
from streams.concepts.base import Input, NatPositive, RecordRef, Sink, Timer
from streams.concepts.intake import Intake
from streams.concepts.minutes import DistrictMinutes
from streams.concepts.rechecks import Recheck, Rechecks, recheck_key
from streams.concepts.register import Register
from streams.concepts.silence import Checkpoints
from streams.concepts.visits import Visits
from streams.concepts.windows import ComplianceWindows, WindowHandle
from streams.contract import topics
from streams.contract.codec import decode_scans
from streams.contract.encoding import encode
from streams.contract.models import Plan, ScanEvent
from streams.contract.records import Decision
from streams.metrics import Metrics
from streams.rules.alerts import AlertDraft, person_dedup_key
from streams.rules.codes import CONTACT_DETECTED, ISOLATION_BREACH_ALERT, MONITORING_RESTRICTED
from streams.rules.compliance import MINUTE_S, DistrictMinute, StreamClock, window_start
from streams.rules.judge import Judgement, is_late, judge
from streams.rules.management import PhaseOn, alert_details, phase_on, restriction
from streams.rules.policy import Params, Policy
from streams.rules.tracing import ContactFlag, flag
from streams.times import shanghai_day, utc_rfc3339

MANAGEMENT_ALERTS = frozenset((ISOLATION_BREACH_ALERT, MONITORING_RESTRICTED))  # with the plan's details


class Judging:
    """The scans' handler: every new scan judged, written, alerted on and counted."""

    def __init__(self, policy: Policy, intake: Intake, alerts: Alerts, rechecks: Rechecks,
                 windows: ComplianceWindows, checkpoints: Checkpoints, minutes: DistrictMinutes,
                 register: Register, clock: StreamClock, uploads: StreamClock, metrics: Metrics,
                 sink: Sink, visits: Visits | None = None) -> None:
        self.policy = policy
        self.intake = intake
        self.alerts = alerts
        self.rechecks = rechecks
        self.windows = windows
        self.checkpoints = checkpoints
        self.minutes = minutes
        self.register = register
        self.clock = clock
        self.uploads = uploads
        self.metrics = metrics
        self.sink = sink
        self.visits = visits  # every decided scan a visit (None: not kept, as in some tests)
        self.contacts: dict[str, ContactFlag] = {}  # traced contacts (source tracing's view), set by the wiring
        self.nat_positive: NatPositive | None = None  # a positive NAT read starts a case (source tracing)
        self._decided_at: tuple[float, str] = (0.0, "")  # `now` is one value per batch: format it once

    def inputs(self) -> Sequence[Input]:
        return (Input("judge_scans", topics.SCANS, self.on_record),)

    def timers(self) -> Sequence[Timer]:
        return ()

    def on_record(self, value: bytes | None, ref: RecordRef, now: float) -> None:
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
        Redelivered event ids are dropped (and counted) first; a repeat inside the record is one too."""
        claimed = self.intake.claim([scan.event_id for scan in scans], topics.SCANS, partition, now)
        fresh = scans if len(claimed) == len(scans) else [scans[i] for i in claimed]
        if fresh:
            run = _Run(self, partition, now)
            run.add_all(fresh)
            run.finish(now if uploaded is None else uploaded)

    def decided_at(self, now: float) -> str:
        if self._decided_at[0] != now:
            self._decided_at = (now, utc_rfc3339(now))
        return self._decided_at[1]


class _Run:
    """The scans of one record, judged in order, with what consecutive scans share cached."""

    def __init__(self, judging: Judging, partition: int, now: float) -> None:
        self.j, self.partition, self.now = judging, partition, now
        self.decided_at = judging.decided_at(now)
        # The partition's stream time, as each scan moves it on (written back at the end).
        self.stream_now = judging.clock.watermark.get(partition, -math.inf)
        self.policy_for: tuple[str, str] | None = None  # (district, venue_type) of `params`, in force in [lo, hi)
        self.lo = self.hi = 0.0
        self.version, self.params = "", cast(Params, None)
        self.recheck_s = self.window_s = 0.0
        self.dwell_s: float | None = None  # the venue type's visit length (None: a scan there is no visit)
        self.visit_scans: list[ScanEvent] = []  # the scans that are visits, and each one's dwell
        self.visit_dwells: list[float] = []
        self.venue, self.venue_key, self.decisions = "", b"", cast(list[bytes], [])
        self.minute_district, self.minute_lo, self.minute_hi = "", 0.0, 0.0
        self.minute, self.reattributed = cast(DistrictMinute, None), False
        self.windows: dict[tuple[str, float], WindowHandle] = {}
        self.reports: dict[str, _Report] = {}
        self.counts = _Counts(judging.metrics)

    def add_all(self, scans: Sequence[ScanEvent]) -> None:
        """Judge each scan in order: its decision, its recheck, its alerts, each concept's count.
        What changes only between runs of scans (policy, venue, minute) is refreshed in helpers
        and kept in locals meanwhile: this loop is the worker's hottest code."""
        now, decided_at, windows, reports, counts = self.now, self.decided_at, self.windows, self.reports, self.counts
        opened_at, plans, metrics = self.j.rechecks.opened_at, self.j.register.plans, self.j.metrics
        contacts, nat_positive = self.j.contacts, self.j.nat_positive
        stream_now, policy_for, lo, hi = self.stream_now, self.policy_for, self.lo, self.hi
        params, version, recheck_s, window_s = self.params, self.version, self.recheck_s, self.window_s
        dwell_s, visit_scans, visit_dwells = self.dwell_s, self.visit_scans, self.visit_dwells
        venue, decisions, minute_district, minute_lo, minute_hi = self.venue, self.decisions, "", 0.0, 0.0
        for scan in scans:
            t, district, venue_type = scan.event_time, scan.district, scan.venue_type
            if t > stream_now:
                stream_now = t
            if policy_for is None or not (lo <= t < hi and policy_for == (district, venue_type)):
                self._policy(t, district, venue_type)
                policy_for, lo, hi, params, version = self.policy_for, self.lo, self.hi, self.params, self.version
                recheck_s, window_s, dwell_s = self.recheck_s, self.window_s, self.dwell_s
            open_key = recheck_key(scan.venue_id, scan.person_ref)
            opened = opened_at(open_key)
            plan = plans.get(scan.person_ref) if plans else None
            plan_phase = managed = contact = None
            if plan is not None and (phase := phase_on(plan, shanghai_day(t))) is not None:
                managed = restriction(plan, phase, scan.venue_id, params.isolation_action, params.monitoring_action)
                plan_phase = (plan, phase)
            elif contacts and (contact := contacts.get(scan.person_ref)) is not None:  # judged by a plan first
                managed = flag(contact, t, params.traced_contact_action)
            verdict = judge(scan, params, opened is not None and 0 <= t - opened <= recheck_s, managed)
            if verdict.ends_recheck or verdict.starts_recheck:
                self._recheck(verdict, open_key, scan, t)
            late = is_late(t, now)
            if scan.venue_id != venue:
                self._venue(scan.venue_id)
                venue, decisions = self.venue, self.decisions
            decisions.append(encode(Decision(
                scan.event_id, scan.checkpoint_id, venue, venue_type, district, scan.event_time_at, decided_at,
                verdict.decision, verdict.reasons, version, late)))
            if dwell_s is not None:  # a visit: made into keys when written (no object per scan here)
                visit_scans.append(scan)
                visit_dwells.append(dwell_s)
            if not (minute_lo <= t < minute_hi and district == minute_district):
                self._minute(t, district, venue_type)
                minute_district, minute_lo, minute_hi = district, self.minute_lo, self.minute_hi
            if verdict.alerts:
                self._alerts(scan, verdict, plan_phase, contact)
            nat = scan.nat
            if nat is not None and nat.result == "positive" and nat_positive is not None:
                nat_positive(scan.event_id, scan.person_ref, district, nat.sampled_at, self.partition, now)
            start = window_start(t, window_s)
            window = windows.get((scan.checkpoint_id, start))
            if window is None:
                window = self._window(scan, start, stream_now)
            if window.closed:
                metrics.three100_late(district).inc()  # its window closed without it
            window.counts.add_scan(scan.temperature_c, scan.mask)
            report = reports.get(scan.checkpoint_id)
            if report is None:
                reports[scan.checkpoint_id] = _Report(t, scan, version)
            else:
                report.add(t, scan)
            counts.add(verdict.decision, verdict.reasons, late, now - t)
        self.stream_now = stream_now

    def _recheck(self, verdict: Judgement, open_key: str, scan: ScanEvent, t: float) -> None:
        """A second reading closes the open recheck; a first fever reading opens one."""
        if verdict.ends_recheck:
            self.j.rechecks.close(open_key)
        if verdict.starts_recheck:
            self.j.rechecks.open(open_key, Recheck(t, self.now + self.recheck_s, scan.event_id, scan.checkpoint_id,
                                                   scan.district, scan.venue_type, self.version), self.partition)

    def _policy(self, t: float, district: str, venue_type: str) -> None:
        self.version, self.params, self.lo, self.hi = self.j.policy.params_span(t, district, venue_type)
        self.policy_for = (district, venue_type)
        self.recheck_s = self.params.recheck_window_minutes * 60
        self.window_s = self.params.compliance_window_seconds
        dwell = self.params.dwell_minutes
        self.dwell_s = None if dwell is None else dwell * 60
        if self.minute_district:  # a new venue type or policy within the minute in hand
            self.counts.group(district, venue_type, self.minute, self.reattributed)

    def _venue(self, venue_id: str) -> None:
        if self.decisions:
            self.j.sink.send_many(topics.DECISIONS, self.venue_key, self.decisions)
        self.venue, self.venue_key, self.decisions = venue_id, venue_id.encode(), []

    def _minute(self, t: float, district: str, venue_type: str) -> None:
        self.minute, self.reattributed = self.j.minutes.minute(self.partition, district, t)
        self.minute_district, self.minute_lo = district, window_start(t, MINUTE_S)
        self.minute_hi = self.minute_lo + MINUTE_S
        self.counts.group(district, venue_type, self.minute, self.reattributed)

    def _alerts(self, scan: ScanEvent, verdict: Judgement, plan_phase: tuple[Plan, PhaseOn] | None,
                contact: ContactFlag | None) -> None:
        for spec in verdict.alerts:
            details = (alert_details(plan_phase[0], plan_phase[1])
                       if plan_phase is not None and spec.kind in MANAGEMENT_ALERTS else None)
            if contact is not None and spec.kind == CONTACT_DETECTED:
                details = {"case_ids": list(contact.case_ids),
                           "last_exposure_at": utc_rfc3339(contact.last_exposure_at)}
            draft = AlertDraft(spec.kind, spec.severity, person_dedup_key(spec.kind, scan.person_ref, self.venue),
                               scan.district, self.venue, self.version, checkpoint_id=scan.checkpoint_id,
                               person_ref=scan.person_ref, reasons=spec.reasons, details=details)
            self.j.alerts.raise_alert(draft, scan.event_id, scan.event_time, self.params.alert_dedup_minutes,
                                      self.partition, self.minute)

    def _window(self, scan: ScanEvent, start: float, stream_now: float) -> WindowHandle:
        """The scan's checkpoint window starting at ``start``, first met in this run."""
        window = self.windows[(scan.checkpoint_id, start)] = self.j.windows.window(
            scan.checkpoint_id, start, self.window_s, scan.district, self.venue, scan.venue_type, self.version,
            self.params, self.partition, stream_now)
        return window

    def finish(self, uploaded: float) -> None:
        """Write what the run holds: the last venue's decisions, the clocks, windows, checkpoints, counts."""
        j, partition, now = self.j, self.partition, self.now
        j.sink.send_many(topics.DECISIONS, self.venue_key, self.decisions)
        if self.visit_scans and j.visits is not None:
            j.visits.add(partition, self.visit_scans, self.visit_dwells)
        j.clock.observe(partition, self.stream_now, now)
        j.uploads.observe(partition, uploaded, now)
        for window in self.windows.values():
            window.save()
        for checkpoint_id, report in self.reports.items():
            last = report.last
            j.checkpoints.reported(checkpoint_id, report.first_t, report.last_t, uploaded, last.district,
                                   last.venue_id, last.venue_type, report.version, partition)
        self.counts.flush()


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
