"""Three 100% windows: per checkpoint and tumbling window of event time, who was checked.

Scans and entry counts add to the window holding their time; a window closes a grace after
its end, by its partition's stream time, and one with any miss raises ``THREE_100_VIOLATION``.
Every closed window's outcomes count in the minute it ended in. A window closed before a record
of it arrived does not reopen: the record is counted as late for the three 100%.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from streams.concepts.alerting import Alerts
from streams.concepts.base import Input, Timer
from streams.concepts.minutes import DistrictMinutes
from streams.kafka.state import PartitionedState, TypedKeyspace
from streams.metrics import Metrics
from streams.rules import codes as c
from streams.rules.alerts import AlertDraft, Occurrence, checkpoint_dedup_key
from streams.rules.compliance import CheckpointWindow, StreamClock
from streams.rules.policy import Params
from streams.times import rfc3339

WINDOW_PREFIX = "w|"  # checkpoint|window_start -> compliance window
TICK_S = 1.0  # windows close this often (by stream time)


class WindowState(msgspec.Struct, gc=False):
    """An open compliance window, as the state keeps it (its ``counts`` are added to in place by
    the handle of the record being counted, then the window is set again)."""

    district: str
    venue_id: str
    venue_type: str
    start: float
    end: float
    close: float  # stream time it closes at: its end plus the grace of the policy it opened under
    version: str
    counts: CheckpointWindow


class WindowHandle:
    """A compliance window being counted; :meth:`save` writes it back to the state (no state:
    the window was closed before, and what is counted here is dropped)."""

    __slots__ = ("counts", "key", "partition", "space", "window")

    def __init__(self, space: TypedKeyspace[WindowState] | None, key: str, window: WindowState | None,
                 partition: int) -> None:
        self.space, self.key, self.window, self.partition = space, key, window, partition
        self.counts = window.counts if window is not None else CheckpointWindow()

    @property
    def closed(self) -> bool:
        return self.space is None

    def save(self) -> None:
        if self.space is not None and self.window is not None:
            self.space.set(self.key, self.window, self.partition)


class ComplianceWindows:
    def __init__(self, state: PartitionedState, alerts: Alerts, minutes: DistrictMinutes, metrics: Metrics,
                 clock: StreamClock, owned: Callable[[], set[int]]) -> None:
        self.open_ones = state.typed(WINDOW_PREFIX, WindowState)
        self.closing = self.open_ones.due_index(lambda window: window.close, monotone=True)
        self.alerts = alerts
        self.minutes = minutes
        self.metrics = metrics
        self.clock = clock
        self.owned = owned

    def inputs(self) -> Sequence[Input]:
        return ()  # counted by the judging of scans and by the entry counts

    def timers(self) -> Sequence[Timer]:
        return (Timer(TICK_S, self.close),)

    def window(self, checkpoint_id: str, start: float, size: float, district: str, venue_id: str,
               venue_type: str, version: str, params: Params, partition: int, stream_now: float) -> WindowHandle:
        """The compliance window starting at ``start``, under the params in force for its record."""
        key = f"{WINDOW_PREFIX}{checkpoint_id}|{start}"
        window = self.open_ones.get(key)
        if window is None:
            close = start + size + params.compliance_grace_seconds
            if close <= stream_now:
                return WindowHandle(None, "", None, partition)
            window = WindowState(district, venue_id, venue_type, start, start + size, close, version,
                                 CheckpointWindow())
        return WindowHandle(self.open_ones, key, window, partition)

    def close(self, now: float) -> int:
        """Emit THREE_100_VIOLATION for each closed checkpoint window with a miss; count outcomes."""
        closed = 0
        for partition in sorted(self.owned()):
            for key in self.closing.pop_due(partition, self.clock.now(partition, now)):
                window = self.open_ones.get(key)
                if window is not None:
                    self._close(key, window, partition)
                    closed += 1
        return closed

    def _close(self, key: str, win: WindowState, partition: int) -> None:
        """Count a closed window's outcomes in the minute it ended in; a miss raises THREE_100_VIOLATION."""
        counts = win.counts
        self.open_ones.delete(key)
        checkpoint_id = key[len(WINDOW_PREFIX):].rsplit("|", 1)[0]
        # Counted in the minute the window ended in (still open: minutes close after windows).
        minute, _ = self.minutes.minute(partition, win.district, win.end - 1)
        outcomes = counts.outcomes()
        minute.add_outcomes(outcomes)
        for measure, (ok, miss) in outcomes.items():
            self.metrics.three100(win.district, measure, "ok").inc(ok)
            self.metrics.three100(win.district, measure, "miss").inc(miss)
        if counts.violated:
            start = rfc3339(win.start)
            self.alerts.emit(AlertDraft(
                c.THREE_100_VIOLATION, c.WARNING, checkpoint_dedup_key(c.THREE_100_VIOLATION, checkpoint_id, start),
                win.district, win.venue_id, win.version, Occurrence(1, win.start, win.end, ()),
                checkpoint_id=checkpoint_id, venue_type=win.venue_type, details={
                    "window_start": start, "window_end": rfc3339(win.end), "scans": counts.scans,
                    "entries": counts.entries if counts.entries_reported else None,
                    "code_misses": counts.code_misses, "temperature_misses": counts.temperature_misses,
                    "mask_misses": counts.mask_misses}), minute, partition)
