"""What the worker does with each record: decode, deduplicate, judge, emit and count.

The :class:`Pipeline` holds no Faust objects of its own: it writes outputs through a
:class:`Sink`, keeps state in :class:`PartitionedState` and is handed ``now`` by its caller, so
agent tests and timers drive it with plain values. Everything here concerns one source
partition at a time (scans and entries of a venue share a partition number).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from streams import rekeying, topics
from streams.codec import decode_entries, decode_scans
from streams.deadletters import dead_letter, dead_letter_key
from streams.encoding import encode
from streams.metrics import Metrics
from streams.models import Decision, EntryCount, Rejected, ScanEvent
from streams.rules import codes as c
from streams.rules.alerts import (
    AlertMemo,
    Occurrence,
    admit,
    alert_record,
    checkpoint_dedup_key,
    person_dedup_key,
)
from streams.rules.compliance import MINUTE_S, CheckpointWindow, DistrictMinute, StreamClock, window_start
from streams.rules.judge import is_late, judge
from streams.rules.policy import Params, Policy
from streams.state import DedupMarks, Keyspace, PartitionedState
from streams.times import rfc3339, utc_rfc3339

DEDUP_PREFIX = "e|"  # in the `seen` table: event_id -> forget-after (wall clock)
DEAD_LETTER_PREFIX = "d|"  # in the `seen` table: topic|partition|offset|index of a record dead-lettered
RECHECK_PREFIX = "f|"  # venue|person -> open fever recheck
ALERT_PREFIX = "a|"  # dedup_key -> AlertMemo
WINDOW_PREFIX = "w|"  # checkpoint|window_start -> compliance window
CHECKPOINT_PREFIX = "c|"  # checkpoint -> last report, silent or not
MINUTE_PREFIX = "m|"  # partition|district|minute -> this partition's part of a district minute
CLOSED_PREFIX = "mc|"  # partition -> the last minute whose partials were sent


class Sink(Protocol):
    def send(self, spec: topics.TopicSpec, key: bytes | None, value: bytes) -> None: ...

    def send_many(self, spec: topics.TopicSpec, key: bytes | None, values: list[bytes]) -> None:
        """Several records of one key, in order."""


class PartialsSink(Protocol):
    """Where this partition's district-minute partials and watermarks go (the internal topic)."""

    def partial(self, district: str, value: bytes) -> None: ...

    def watermark(self, value: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class RecordRef:
    """Where a record came from, for dead letters and state partitioning."""

    spec: topics.TopicSpec
    topic: str  # the name on the cluster (the contract name, behind any HCS_TOPIC_PREFIX)
    partition: int
    offset: int
    key: bytes | None
    # The Kafka record timestamp (seconds): when the producer sent the record, a device's
    # upload time. None when unknown; it is then taken as read now.
    timestamp: float | None = None

    def uploaded(self, now: float) -> float:
        """When the record was uploaded, never later than ``now`` (a device clock ahead of ours
        must not keep its checkpoint alive)."""
        ts = self.timestamp
        return now if ts is None or ts < 0 or ts > now else ts


class Pipeline:
    def __init__(self, policy: Policy, state: PartitionedState, seen: DedupMarks, sink: Sink,
                 partials: PartialsSink, metrics: Metrics, dedup_horizon_s: float,
                 is_active: Callable[[int], bool] = lambda p: True, idle_s: float = 10.0) -> None:
        self.policy = policy
        self.state = state
        # One keyspace per concept of the state table: its timer walks only its own keys.
        self.rechecks = state.keyspace(RECHECK_PREFIX)
        self.alert_memos = state.keyspace(ALERT_PREFIX, by_update=True)  # oldest first, for the sweep
        self.windows = state.keyspace(WINDOW_PREFIX)
        self.checkpoints = state.keyspace(CHECKPOINT_PREFIX)
        self.minute_parts = state.keyspace(MINUTE_PREFIX)
        self.closed_minutes = state.keyspace(CLOSED_PREFIX)
        self.seen = seen
        self.sink = sink
        self.partials = partials
        self.metrics = metrics
        self.dedup_horizon_s = dedup_horizon_s
        self.is_active = is_active  # does this worker own the partition now (for timers)?
        self.clock = StreamClock(idle_s=idle_s)
        # The same clock over upload times (record timestamps): a checkpoint is silent only when
        # nothing of it was uploaded for a while either, not only nothing of recent event time.
        self.uploads = StreamClock(idle_s=idle_s)
        self._minutes: dict[str, tuple[DistrictMinute, int]] = {}  # live partials, by state key
        self._touched_minutes: set[str] = set()  # changed since the last flush
        self._decided_at: tuple[float, str] = (0.0, "")  # `now` is one value per batch: format it once

    def flush(self) -> None:
        """Send state changes to the changelogs (before the batch's offsets can be committed)."""
        for key in self._touched_minutes:
            minute, partition = self._minutes[key]
            self.minute_parts.set(key, minute.to_json(), partition)
        self._touched_minutes.clear()
        self.seen.flush()
        self.state.flush()

    def release(self, partitions: Collection[int]) -> None:
        """Forget what is cached of ``partitions``, which this worker gave up: another worker may
        add to their state, and should one come back, its figures are what the table recovers
        and its stream time starts anew."""
        self.clock.forget(partitions)
        self.uploads.forget(partitions)
        for key in [key for key, (_, partition) in self._minutes.items() if partition in partitions]:
            del self._minutes[key]
            # Nothing touched is lost: a batch is flushed before it is acknowledged, and Faust
            # waits for every acknowledgement before it revokes.
            self._touched_minutes.discard(key)

    # -- scans ---------------------------------------------------------------------------------

    def on_scan_record(self, value: bytes | None, ref: RecordRef, now: float) -> None:
        """Handle one record of ``hcs.scans.v1`` (a scan or a gateway batch)."""
        started = time.perf_counter()
        scans: list[ScanEvent] = []
        for i, item in enumerate(decode_scans(value, ref.key, now)):
            if type(item) is ScanEvent:
                scans.append(item)
            else:
                self.dead_letter(item, ref, now, i)  # type: ignore[arg-type]
        if scans:
            self.on_scans(scans, ref.partition, now, ref.uploaded(now))
            # Each scan is timed as its share of the record (decoding included): two clock
            # reads and a histogram update per scan cost more than the rules of a plain scan.
            self.metrics.processing.observe_many((time.perf_counter() - started) / len(scans), len(scans))

    def _claim(self, event_ids: list[str], spec: topics.TopicSpec, partition: int, now: float,
               prefix: str = DEDUP_PREFIX) -> list[int]:
        """Mark the ids not seen before (until the dedup horizon); count the others as duplicates.
        Returns the positions of the new ones."""
        claimed = self.seen.claim([prefix + event_id for event_id in event_ids],
                                  now + self.dedup_horizon_s, partition)
        if len(claimed) < len(event_ids):
            self.metrics.duplicates(spec.name).inc(len(event_ids) - len(claimed))
        return claimed

    def on_scans(self, scans: Sequence[ScanEvent], partition: int, now: float, uploaded: float | None = None) -> None:
        """Judge the scans of one record, in order: each gets its decision, alerts and counts.
        ``uploaded``: when the record was sent (its Kafka timestamp; default ``now``).

        What consecutive scans share (the scans of a gateway batch are one venue's) is looked
        up once per run of scans sharing it and written back once: the policy in force, the
        checkpoint window and status, the district minute, the metric children. Redelivered
        event ids are dropped (and counted) first; a repeat inside the record is one too.
        """
        claimed = self._claim([scan.event_id for scan in scans], topics.SCANS, partition, now)
        fresh = scans if len(claimed) == len(scans) else [scans[i] for i in claimed]
        if not fresh:
            return
        rechecks, get, sink = self.rechecks, self.rechecks.get, self.sink
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
        windows: dict[tuple[str, float], _WindowHandle] = {}
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
            recheck_key = f"{RECHECK_PREFIX}{scan.venue_id}|{scan.person_ref}"
            recheck = get(recheck_key)
            verdict = judge(scan, params, recheck is not None and 0 <= t - recheck["opened"] <= recheck_s)
            late = is_late(t, now)
            if verdict.ends_recheck:
                rechecks.delete(recheck_key)
            if verdict.starts_recheck:
                rechecks.set(recheck_key, {
                    "opened": t, "due": now + recheck_s, "event_id": scan.event_id,
                    "checkpoint_id": scan.checkpoint_id, "district": district,
                    "venue_type": venue_type, "policy_version": version}, partition)

            if scan.venue_id != venue:
                if decisions:
                    sink.send_many(topics.DECISIONS, venue_key, decisions)
                venue, venue_key, decisions = scan.venue_id, scan.venue_id.encode(), []
            decisions.append(encode(Decision(
                scan.event_id, scan.checkpoint_id, venue, venue_type, district, scan.event_time_at, decided_at,
                verdict.decision, verdict.reasons, version, late)))
            if not (minute_lo <= t < minute_hi and district == minute_district):
                minute, reattributed = self._minute(partition, district, t)
                minute_district, minute_lo = district, window_start(t, MINUTE_S)
                minute_hi = minute_lo + MINUTE_S
                counts.group(district, venue_type, minute, reattributed)
            for spec in verdict.alerts:
                key = person_dedup_key(spec.kind, scan.person_ref, venue)
                self.raise_alert(key, spec.kind, spec.severity, spec.reasons, district, venue,
                                 scan.checkpoint_id, scan.person_ref, scan.event_id, t,
                                 params.alert_dedup_minutes, version, partition, minute)

            start = window_start(t, window_s)
            window = windows.get((scan.checkpoint_id, start))
            if window is None:
                window = windows[(scan.checkpoint_id, start)] = self._window(
                    scan.checkpoint_id, start, window_s, district, venue, venue_type, version, params,
                    partition, stream_now)
            if window.state is None:
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
            self._reported(checkpoint_id, report.first_t, report.last_t, uploaded, last.district, last.venue_id,
                           last.venue_type, report.version, partition)
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
            self.dead_letter(item, ref, now)
            return
        self.on_entries(item, ref.partition, now, ref.uploaded(now))

    def on_entries(self, count: EntryCount, partition: int, now: float, uploaded: float | None = None) -> None:
        if not self._claim([count.event_id], topics.ENTRIES, partition, now):
            return
        if uploaded is None:
            uploaded = now
        self.clock.observe(partition, count.window_start, now)
        self.uploads.observe(partition, uploaded, now)
        version, params = self.policy.params(count.window_start, count.district, count.venue_type)
        # An interval is counted in the compliance window holding its start.
        size = params.compliance_window_seconds
        window = self._window(count.checkpoint_id, window_start(count.window_start, size), size, count.district,
                              count.venue_id, count.venue_type, version, params, partition,
                              self.clock.now(partition, now))
        if window.state is None:
            self.metrics.three100_late(count.district).inc()
        window.counts.add_entries(count.entries)
        window.save()
        self._reported(count.checkpoint_id, count.window_start, count.window_start, uploaded, count.district,
                       count.venue_id, count.venue_type, version, partition)
        self.metrics.entries(count.district, count.venue_type).inc(count.entries)

    # -- state helpers -------------------------------------------------------------------------

    def _window(self, checkpoint_id: str, start: float, size: float, district: str, venue_id: str,
                venue_type: str, version: str, params: Params, partition: int, stream_now: float) -> _WindowHandle:
        """The compliance window starting at ``start``, under the params in force for its record.

        A window closed (its violation emitted) before this record arrived does not reopen: the
        handle then has no state, and the caller counts the record as late for the three 100%.
        """
        key = f"{WINDOW_PREFIX}{checkpoint_id}|{start}"
        raw = self.windows.get(key)
        if raw is None:
            close = start + size + params.compliance_grace_seconds
            if close <= stream_now:
                return _WindowHandle(None, "", CheckpointWindow(), partition)
            raw = {"district": district, "venue_id": venue_id, "venue_type": venue_type, "start": start,
                   "end": start + size, "close": close, "version": version, "counts": CheckpointWindow().to_json()}
        return _WindowHandle(self.windows, key, CheckpointWindow.from_json(raw["counts"]), partition, raw)

    def _reported(self, checkpoint_id: str, first_t: float, last_t: float, uploaded: float, district: str,
                  venue_id: str, venue_type: str, version: str, partition: int) -> None:
        """A checkpoint reported records of event times ``first_t`` .. ``last_t`` (in the order
        read), uploaded at ``uploaded``."""
        key = CHECKPOINT_PREFIX + checkpoint_id
        status = self.checkpoints.get(key)
        if status is not None and status.get("silent"):
            self._silent_alert(checkpoint_id, district, venue_id, "resolved",
                               Occurrence(1, status["seen"], first_t, ()), version,
                               {"silent_since": rfc3339(status["seen"]), "reported_again_at": rfc3339(first_t)},
                               self._minute(partition, district, first_t)[0])
        seen, heard = (last_t, uploaded) if status is None else (
            max(status["seen"], last_t), max(status.get("heard", uploaded), uploaded))
        self.checkpoints.set(key, {"seen": seen, "heard": heard, "silent": False, "district": district,
                             "venue_id": venue_id, "venue_type": venue_type}, partition)

    def _minute(self, partition: int, district: str, t: float) -> tuple[DistrictMinute, bool]:
        """This partition's part of ``district``'s minute holding ``t``; a minute already sent is
        closed, so its late arrivals count in the earliest open minute (second value True)."""
        start = window_start(t, MINUTE_S)
        closed = self.closed_minutes.get(f"{CLOSED_PREFIX}{partition}")
        reattributed = closed is not None and start <= closed
        if reattributed:
            start = closed + MINUTE_S
        key = f"{MINUTE_PREFIX}{partition}|{district}|{start}"
        cached = self._minutes.get(key)
        if cached is None:
            raw = self.minute_parts.get(key)  # after a restart, the partial recovered from the changelog
            cached = self._minutes[key] = (DistrictMinute.from_json(raw) if raw is not None else DistrictMinute(),
                                           partition)
            self.minute_parts.set(key, cached[0].to_json(), partition)
        self._touched_minutes.add(key)  # the caller is about to add to it
        return cached[0], reattributed

    # -- alerts --------------------------------------------------------------------------------

    def raise_alert(self, dedup_key: str, kind: str, severity: str, reasons: tuple[str, ...],
                    district: str, venue_id: str, checkpoint_id: str | None, person_ref: str | None,
                    event_id: str, event_time: float, dedup_minutes: float, version: str,
                    partition: int, minute: DistrictMinute) -> None:
        """Emit a person alert unless a repeat of its dedup key within the dedup window."""
        state_key = ALERT_PREFIX + dedup_key
        raw = self.alert_memos.get(state_key)
        memo = AlertMemo.from_json(raw) if raw is not None else None
        occurrence, memo = admit(memo, event_id, event_time, dedup_minutes)
        self.alert_memos.set(state_key, memo.to_json(), partition)
        if occurrence is not None:
            self.emit_alert(kind=kind, severity=severity, dedup_key=dedup_key, district=district,
                            venue_id=venue_id, checkpoint_id=checkpoint_id, person_ref=person_ref,
                            reasons=reasons, occurrence=occurrence, status="firing", policy_version=version,
                            minute=minute)

    def emit_alert(self, *, minute: DistrictMinute, **fields: Any) -> None:
        record = alert_record(**fields)
        self.sink.send(topics.ALERTS, record["dedup_key"].encode(), encode(record))
        self.metrics.alerts(record["district"], record["kind"], record["severity"]).inc()
        minute.alerts[record["kind"]] += 1

    # -- timers --------------------------------------------------------------------------------

    def _owned(self) -> set[int]:
        """The source partitions this worker owns now (asked once per timer run, not per key)."""
        return {p for p in range(topics.SCANS.partitions) if self.is_active(p)}

    def expire_rechecks(self, now: float) -> int:
        """Raise FEVER_UNRESOLVED for every recheck window that ended without a second reading."""
        fired = 0
        owned = self._owned()
        for key, partition, rec in self.rechecks.items():
            if rec["due"] > now or partition not in owned:
                continue
            venue_id, person_ref = key[len(RECHECK_PREFIX):].split("|", 1)
            _, params = self.policy.params(rec["opened"], rec["district"], rec["venue_type"])
            self.rechecks.delete(key)
            minute, _ = self._minute(partition, rec["district"], self.clock.now(partition, now))
            self.raise_alert(person_dedup_key(c.FEVER_UNRESOLVED, person_ref, venue_id), c.FEVER_UNRESOLVED,
                             c.WARNING, (c.FEVER,), rec["district"], venue_id, rec["checkpoint_id"],
                             person_ref, rec["event_id"], rec["opened"], params.alert_dedup_minutes,
                             rec["policy_version"], partition, minute)
            fired += 1
        return fired

    def close_windows(self, now: float) -> int:
        """Emit THREE_100_VIOLATION for each closed checkpoint window with a miss; count outcomes."""
        closed = 0
        owned = self._owned()
        for key, partition, win in self.windows.items():
            if partition not in owned:
                continue
            stream_now = self.clock.now(partition, now)
            if win["close"] > stream_now:
                continue
            counts = CheckpointWindow.from_json(win["counts"])
            self.windows.delete(key)
            checkpoint_id = key[len(WINDOW_PREFIX):].rsplit("|", 1)[0]
            # Counted in the minute the window ended in (still open: minutes close after windows).
            minute, _ = self._minute(partition, win["district"], win["end"] - 1)
            outcomes = counts.outcomes()
            minute.add_outcomes(outcomes)
            for measure, (ok, miss) in outcomes.items():
                self.metrics.three100(win["district"], measure, "ok").inc(ok)
                self.metrics.three100(win["district"], measure, "miss").inc(miss)
            if counts.violated:
                start = rfc3339(win["start"])
                self.emit_alert(
                    kind=c.THREE_100_VIOLATION, severity=c.WARNING,
                    dedup_key=checkpoint_dedup_key(c.THREE_100_VIOLATION, checkpoint_id, start),
                    district=win["district"], venue_id=win["venue_id"], checkpoint_id=checkpoint_id,
                    person_ref=None, reasons=(),
                    occurrence=Occurrence(1, win["start"], win["end"], ()), status="firing",
                    policy_version=win["version"], minute=minute, details={
                        "window_start": start, "window_end": rfc3339(win["end"]), "scans": counts.scans,
                        "entries": counts.entries if counts.entries_reported else None,
                        "code_misses": counts.code_misses, "temperature_misses": counts.temperature_misses,
                        "mask_misses": counts.mask_misses})
            closed += 1
        return closed

    def check_silent(self, now: float) -> int:
        """Raise CHECKPOINT_SILENT for checkpoints quiet for ``silent_after_minutes``: no record of
        a later event time for that long of stream time, and no record uploaded for that long of
        upload time. A device sending its buffer late is alive; a backlog read after an outage
        is judged by when its records were sent, not by when this worker read them."""
        fired = 0
        owned = self._owned()
        for key, partition, status in self.checkpoints.items():
            if status["silent"] or partition not in owned:
                continue
            stream_now = self.clock.now(partition, now)
            version, params = self.policy.params(stream_now, status["district"], status["venue_type"])
            quiet_s = params.silent_after_minutes * 60
            if stream_now - status["seen"] < quiet_s:
                continue
            # State written before upload times were kept has none: event time alone, as then.
            if self.uploads.now(partition, now) - status.get("heard", -math.inf) < quiet_s:
                continue
            checkpoint_id = key[len(CHECKPOINT_PREFIX):]
            self.checkpoints.set(key, {**status, "silent": True}, partition)
            self._silent_alert(
                checkpoint_id, status["district"], status["venue_id"], "firing",
                Occurrence(1, status["seen"], status["seen"], ()), version,
                {"silent_since": rfc3339(status["seen"]), "silent_after_minutes": params.silent_after_minutes},
                self._minute(partition, status["district"], stream_now)[0])
            fired += 1
        return fired

    def _silent_alert(self, checkpoint_id: str, district: str, venue_id: str, status: str, occurrence: Occurrence,
                      version: str, details: dict[str, Any], minute: DistrictMinute) -> None:
        self.emit_alert(
            kind=c.CHECKPOINT_SILENT, severity=c.WARNING,
            dedup_key=checkpoint_dedup_key(c.CHECKPOINT_SILENT, checkpoint_id), district=district,
            venue_id=venue_id, checkpoint_id=checkpoint_id, person_ref=None, reasons=(), occurrence=occurrence,
            status=status, policy_version=version, details=details, minute=minute)

    def close_minutes(self, now: float) -> int:
        """Send this worker's district-minute partials whose minute ended a grace ago, then a
        watermark per partition, so the owner of each district can close the minute."""
        closing: dict[int, float] = {}  # partition -> the last fully closed minute, if it moved on
        for partition in sorted(self._owned()):
            stream_now = self.clock.now(partition, now)
            if stream_now == -math.inf:
                continue
            grace = self.policy.defaults_at(stream_now).compliance_grace_seconds
            through = window_start(stream_now - grace, MINUTE_S) - MINUTE_S
            before = self.closed_minutes.get(f"{CLOSED_PREFIX}{partition}")
            if before is None or through > before:
                closing[partition] = through
        if not closing:
            return 0
        sent = 0
        for key, partition, raw in self.minute_parts.items():  # one pass for every partition
            last = closing.get(partition)
            if last is None:
                continue
            _, district, start_text = key[len(MINUTE_PREFIX):].split("|")  # partition|district|start
            start = float(start_text)
            if start > last:
                continue
            cached = self._minutes.pop(key, None)
            self._touched_minutes.discard(key)
            minute = cached[0] if cached is not None else DistrictMinute.from_json(raw)
            self.minute_parts.delete(key)
            self.partials.partial(district, rekeying.part(partition, district, start, minute.to_json()))
            sent += 1
        # Each watermark after its partition's partials (all of them are in this flush, in order).
        for partition, through in closing.items():
            self.closed_minutes.set(f"{CLOSED_PREFIX}{partition}", through, partition)
            self.partials.watermark(rekeying.watermark(partition, through))
        return sent

    def sweep(self, now: float) -> int:
        """Forget dedup ids past the horizon, and alert memos idle for as long, to bound memory.

        Memos are walked least recently set first, and the walk stops at the first one still
        live: a sweep costs what it removes, not what the table holds. A memo set out of event
        order (a late upload) may so outlive its horizon until the memos set before it go.
        """
        owned = self._owned()
        removed = self.seen.sweep(now, owned.__contains__)
        expired = []
        for key, partition, raw in self.alert_memos.oldest():
            memo = AlertMemo.from_json(raw)
            if now - max(memo.emitted_at, memo.last_event_time) <= self.dedup_horizon_s:
                break
            if partition in owned:
                expired.append(key)
        for key in expired:
            self.alert_memos.delete(key)
        return removed + len(expired)

    # -- dead letters --------------------------------------------------------------------------

    def dead_letter(self, rejected: Rejected, ref: RecordRef, now: float, index: int = 0) -> None:
        """Dead-letter a refused record (or scan ``index`` of a batch) once: a record read again
        after a crash is marked like a scan's event id, by where it was read."""
        if not self._claim([f"{ref.topic}|{ref.partition}|{ref.offset}|{index}"], ref.spec, ref.partition, now,
                           DEAD_LETTER_PREFIX):
            return
        self.sink.send(topics.DLQ, dead_letter_key(ref.key),
                       dead_letter(rejected, ref.topic, ref.partition, ref.offset, utc_rfc3339(now)))
        self.metrics.dead_letters(ref.spec.name, rejected.reason).inc()


class _WindowHandle:
    """A compliance window being counted; :meth:`save` writes it back to the state (no state:
    the window was closed before, and what is counted here is dropped)."""

    __slots__ = ("counts", "key", "partition", "raw", "state")

    def __init__(self, state: Keyspace | None, key: str, counts: CheckpointWindow, partition: int,
                 raw: dict[str, Any] | None = None) -> None:
        self.state, self.key, self.counts, self.partition, self.raw = state, key, counts, partition, raw

    def save(self) -> None:
        if self.state is not None and self.raw is not None:
            self.raw["counts"] = self.counts.to_json()
            self.state.set(self.key, self.raw, self.partition)


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
