"""People counted at checkpoints (``hcs.entries.v1``): each interval added to its checkpoint's
three 100% window (the code-examination misses are the people counted but not scanned) and to
its checkpoint's status."""

from __future__ import annotations

from collections.abc import Sequence

from streams.concepts.base import Input, RecordRef, Timer
from streams.concepts.intake import Intake
from streams.concepts.silence import Checkpoints
from streams.concepts.windows import ComplianceWindows
from streams.contract import topics
from streams.contract.codec import decode_entries
from streams.contract.models import EntryCount, Rejected
from streams.metrics import Metrics
from streams.rules.compliance import StreamClock, window_start
from streams.rules.policy import Policy


class EntryCounts:
    def __init__(self, policy: Policy, intake: Intake, windows: ComplianceWindows, checkpoints: Checkpoints,
                 clock: StreamClock, uploads: StreamClock, metrics: Metrics) -> None:
        self.policy = policy
        self.intake = intake
        self.windows = windows
        self.checkpoints = checkpoints
        self.clock = clock
        self.uploads = uploads
        self.metrics = metrics

    def inputs(self) -> Sequence[Input]:
        return (Input("count_entries", topics.ENTRIES, self.on_record),)

    def timers(self) -> Sequence[Timer]:
        return ()

    def on_record(self, value: bytes | None, ref: RecordRef, now: float) -> None:
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
