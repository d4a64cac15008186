"""What the worker does with each record: decode, deduplicate, judge, emit and count.

The :class:`Pipeline` holds no Faust objects of its own: it writes outputs through a
:class:`Sink`, keeps state in :class:`PartitionedState` and is handed ``now`` by its caller, so
agent tests and timers drive it with plain values.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import orjson

from streams import topics
from streams.codec import decode_scans
from streams.metrics import Metrics
from streams.models import Rejected, ScanEvent
from streams.rules import codes as c
from streams.rules.alerts import AlertMemo, admit, alert_record, person_dedup_key, utc_rfc3339
from streams.rules.judge import is_late, judge
from streams.rules.policy import Policy
from streams.state import PartitionedState

DEDUP_PREFIX = "e|"
RECHECK_PREFIX = "f|"
ALERT_PREFIX = "a|"


class Sink(Protocol):
    def send(self, spec: topics.TopicSpec, key: bytes | None, value: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class RecordRef:
    """Where a record came from, for dead letters and state partitioning."""

    spec: topics.TopicSpec
    topic: str  # the name on the cluster (the contract name, behind any HCS_TOPIC_PREFIX)
    partition: int
    offset: int
    key: bytes | None


class Pipeline:
    def __init__(self, policy: Policy, state: PartitionedState, sink: Sink, metrics: Metrics,
                 dedup_horizon_s: float, is_active: Callable[[int], bool] = lambda p: True) -> None:
        self.policy = policy
        self.state = state
        self.sink = sink
        self.metrics = metrics
        self.dedup_horizon_s = dedup_horizon_s
        self.is_active = is_active  # does this worker own the partition now (for timers)?

    # -- scans ---------------------------------------------------------------------------------

    def on_scan_record(self, value: bytes | None, ref: RecordRef, now: float) -> None:
        """Handle one record of ``hcs.scans.v1`` (a scan or a gateway batch)."""
        for item in decode_scans(value, ref.key):
            if isinstance(item, Rejected):
                self.dead_letter(item, ref, now)
            else:
                started = time.perf_counter()
                self.on_scan(item, ref.partition, now)
                self.metrics.processing.observe(time.perf_counter() - started)

    def on_scan(self, scan: ScanEvent, partition: int, now: float) -> None:
        dedup_key = DEDUP_PREFIX + scan.event_id
        if dedup_key in self.state:
            self.metrics.duplicates(topics.SCANS.name).inc()
            return
        version, params = self.policy.params(scan.event_time, scan.district, scan.venue_type)
        recheck_key = f"{RECHECK_PREFIX}{scan.venue_id}|{scan.person_ref}"
        recheck = self.state.get(recheck_key)
        recheck_open = recheck is not None and 0 <= scan.event_time - recheck["opened"] <= (
            params.recheck_window_minutes * 60)
        verdict = judge(scan, params, recheck_open)
        late = is_late(scan.event_time, now)

        if verdict.ends_recheck:
            self.state.delete(recheck_key)
        if verdict.starts_recheck:
            window_s = params.recheck_window_minutes * 60
            self.state.set(recheck_key, {
                "opened": scan.event_time, "due": now + window_s, "event_id": scan.event_id,
                "checkpoint_id": scan.checkpoint_id, "district": scan.district,
                "venue_type": scan.venue_type, "policy_version": version}, partition)

        self.sink.send(topics.DECISIONS, scan.venue_id.encode(), orjson.dumps({
            "schema": "hcs.decision.v1",
            "event_id": scan.event_id,
            "checkpoint_id": scan.checkpoint_id,
            "venue_id": scan.venue_id,
            "venue_type": scan.venue_type,
            "district": scan.district,
            "event_time": scan.event_time_text,
            "decided_at": utc_rfc3339(now),
            "decision": verdict.decision,
            "reasons": list(verdict.reasons),
            "policy_version": version,
            "late": late,
        }))
        for spec in verdict.alerts:
            key = person_dedup_key(spec.kind, scan.person_ref, scan.venue_id)
            self.raise_alert(key, spec.kind, spec.severity, spec.reasons, scan.district, scan.venue_id,
                             scan.checkpoint_id, scan.person_ref, scan.event_id, scan.event_time,
                             params.alert_dedup_minutes, version, partition)
        self.state.set(dedup_key, now + self.dedup_horizon_s, partition)

        m = self.metrics
        m.scans(scan.district, scan.venue_type, verdict.decision).inc()
        for reason in verdict.reasons:
            m.scan_reasons(scan.district, scan.venue_type, reason).inc()
        if late:
            m.late(scan.district).inc()
        m.lag(scan.district).observe(max(now - scan.event_time, 0.0))

    # -- alerts --------------------------------------------------------------------------------

    def raise_alert(self, dedup_key: str, kind: str, severity: str, reasons: tuple[str, ...],
                    district: str, venue_id: str, checkpoint_id: str | None, person_ref: str | None,
                    event_id: str, event_time: float, dedup_minutes: float, version: str,
                    partition: int) -> None:
        """Emit a person alert unless a repeat of its dedup key within the dedup window."""
        state_key = ALERT_PREFIX + dedup_key
        raw = self.state.get(state_key)
        memo = AlertMemo.from_json(raw) if raw is not None else None
        occurrence, memo = admit(memo, event_id, event_time, dedup_minutes)
        self.state.set(state_key, memo.to_json(), partition)
        if occurrence is not None:
            self.emit_alert(kind=kind, severity=severity, dedup_key=dedup_key, district=district,
                            venue_id=venue_id, checkpoint_id=checkpoint_id, person_ref=person_ref,
                            reasons=reasons, occurrence=occurrence, status="firing", policy_version=version)

    def emit_alert(self, **fields: object) -> None:
        record = alert_record(**fields)  # type: ignore[arg-type]
        self.sink.send(topics.ALERTS, record["dedup_key"].encode(), orjson.dumps(record))
        self.metrics.alerts(record["district"], record["kind"], record["severity"]).inc()

    # -- timers --------------------------------------------------------------------------------

    def expire_rechecks(self, now: float) -> int:
        """Raise FEVER_UNRESOLVED for every recheck window that ended without a second reading."""
        fired = 0
        for key, partition, rec in self.state.items(RECHECK_PREFIX):
            if rec["due"] > now or not self.is_active(partition):
                continue
            venue_id, person_ref = key[len(RECHECK_PREFIX):].split("|", 1)
            _, params = self.policy.params(rec["opened"], rec["district"], rec["venue_type"])
            self.state.delete(key)
            self.raise_alert(person_dedup_key(c.FEVER_UNRESOLVED, person_ref, venue_id), c.FEVER_UNRESOLVED,
                             c.WARNING, (c.FEVER,), rec["district"], venue_id, rec["checkpoint_id"],
                             person_ref, rec["event_id"], rec["opened"], params.alert_dedup_minutes,
                             rec["policy_version"], partition)
            fired += 1
        return fired

    def sweep(self, now: float) -> int:
        """Forget dedup ids past the horizon, and alert memos idle for as long, to bound memory."""
        removed = 0
        for key, partition, expires in self.state.items(DEDUP_PREFIX):
            if expires <= now and self.is_active(partition):
                self.state.delete(key)
                removed += 1
        for key, partition, raw in self.state.items(ALERT_PREFIX):
            memo = AlertMemo.from_json(raw)
            if now - max(memo.emitted_at, memo.last_event_time) > self.dedup_horizon_s and self.is_active(partition):
                self.state.delete(key)
                removed += 1
        return removed

    # -- dead letters --------------------------------------------------------------------------

    def dead_letter(self, rejected: Rejected, ref: RecordRef, now: float) -> None:
        self.sink.send(topics.DLQ, ref.key, orjson.dumps({
            "schema": "hcs.deadletter.v1",
            "source_topic": ref.topic,
            "partition": ref.partition,
            "offset": ref.offset,
            "reason": rejected.reason,
            "detail": rejected.detail,
            "payload_b64": base64.b64encode(rejected.payload).decode("ascii"),
            "received_at": utc_rfc3339(now),
        }))
        self.metrics.dead_letters(ref.spec.name, rejected.reason).inc()

