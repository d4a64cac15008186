"""Alert admission: a person alert once per dedup window; every alert out, counted.

A person alert's dedup key (kind, person, venue) has a memo in the state table: repeats within
``alert_dedup_minutes`` of an emission are folded into the next one (:func:`rules.alerts.admit`
decides). Memos are kept until idle for the dedup horizon; the sweep walks them least recently
set first and stops at the first live one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from streams.concepts.base import Input, Sink, Timer
from streams.contract import topics
from streams.contract.encoding import encode
from streams.contract.records import Alert
from streams.kafka.state import PartitionedState
from streams.metrics import Metrics
from streams.rules.alerts import AlertDraft, AlertMemo, admit, alert_record
from streams.rules.compliance import DistrictMinute

ALERT_PREFIX = "a|"  # dedup_key -> AlertMemo
SWEEP_S = 60.0  # idle memos are forgotten this often
# Told of every alert emitted: (the record, its latest event time, the source partition it was
# raised on, the venue's type when the raiser knows it). Supervision counts recurrences so.
AlertObserver = Callable[[Alert, float, int, "str | None"], None]


class Alerts:
    def __init__(self, state: PartitionedState, sink: Sink, metrics: Metrics, dedup_horizon_s: float,
                 owned: Callable[[], set[int]]) -> None:
        self.memos = state.typed(ALERT_PREFIX, AlertMemo, by_update=True)  # oldest first, for the sweep
        self.sink = sink
        self.metrics = metrics
        self.dedup_horizon_s = dedup_horizon_s
        self.owned = owned
        self.observers: list[AlertObserver] = []

    def inputs(self) -> Sequence[Input]:
        return ()

    def timers(self) -> Sequence[Timer]:
        return (Timer(SWEEP_S, lambda now: self.sweep(now, self.owned())),)

    def tell(self, observer: AlertObserver) -> None:
        """Tell ``observer`` of every alert emitted from now on (the worker's wiring does)."""
        self.observers.append(observer)

    def raise_alert(self, draft: AlertDraft, event_id: str, event_time: float, dedup_minutes: float,
                    partition: int, minute: DistrictMinute) -> None:
        """Emit a person alert unless a repeat of its dedup key within the dedup window."""
        state_key = ALERT_PREFIX + draft.dedup_key
        occurrence, memo = admit(self.memos.get(state_key), event_id, event_time, dedup_minutes)
        self.memos.set(state_key, memo, partition)
        if occurrence is not None:
            self.emit(replace(draft, occurrence=occurrence), minute, partition)

    def emit(self, draft: AlertDraft, minute: DistrictMinute, partition: int) -> None:
        """One alert out to ``hcs.alerts.v1``, counted in the metrics and in its district minute,
        and told to the observers (raised on source ``partition``)."""
        record = alert_record(draft)
        self.sink.send(topics.ALERTS, record.dedup_key.encode(), encode(record))
        self.metrics.alerts(record.district, record.kind, record.severity).inc()
        minute.alerts[record.kind] += 1
        last_event_time = draft.occurrence.last_event_time if draft.occurrence is not None else 0.0
        for observe in self.observers:
            observe(record, last_event_time, partition, draft.venue_type)

    def sweep(self, now: float, owned: set[int]) -> int:
        """Forget memos idle for the dedup horizon; stops at the first live one (a memo set out
        of event order, a late upload, may so outlive its horizon until those before it go)."""
        expired = []
        for key, partition, memo in self.memos.oldest():
            if now - max(memo.emitted_at, memo.last_event_time) <= self.dedup_horizon_s:
                break
            if partition in owned:
                expired.append(key)
        for key in expired:
            self.memos.delete(key)
        return len(expired)
