"""Intake: what every record goes through first — its provenance, deduplication, dead letters.

A record's events are claimed by id in the ``seen`` table (until the dedup horizon): a
redelivered id is dropped and counted. A record that cannot be accepted goes to
``hcs.dlq.v1`` once — it is claimed by where it was read, so a record read again after a crash
is not dead-lettered twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from streams.concepts.base import Input, RecordRef, Sink, Timer
from streams.contract import topics
from streams.contract.deadletters import dead_letter, dead_letter_key
from streams.contract.models import Rejected
from streams.kafka.state import DedupMarks
from streams.metrics import Metrics
from streams.times import utc_rfc3339

DEDUP_PREFIX = "e|"  # in the `seen` table: event_id -> forget-after (wall clock)
SWEEP_S = 60.0  # dedup ids past the horizon are forgotten this often
DEAD_LETTER_PREFIX = "d|"  # in the `seen` table: topic|partition|offset|index of a record dead-lettered


class Intake:
    def __init__(self, seen: DedupMarks, sink: Sink, metrics: Metrics, dedup_horizon_s: float,
                 owned: Callable[[], set[int]]) -> None:
        self.seen = seen
        self.sink = sink
        self.metrics = metrics
        self.dedup_horizon_s = dedup_horizon_s
        self.owned = owned

    def inputs(self) -> Sequence[Input]:
        return ()  # every handler's first step, not a topic of its own

    def timers(self) -> Sequence[Timer]:
        return (Timer(SWEEP_S, lambda now: self.sweep(now, self.owned())),)

    def claim(self, event_ids: list[str], spec: topics.TopicSpec, partition: int, now: float,
              prefix: str = DEDUP_PREFIX) -> list[int]:
        """Mark the ids not seen before (until the dedup horizon); count the others as duplicates.
        Returns the positions of the new ones."""
        claimed = self.seen.claim([prefix + event_id for event_id in event_ids],
                                  now + self.dedup_horizon_s, partition)
        if len(claimed) < len(event_ids):
            self.metrics.duplicates(spec.name).inc(len(event_ids) - len(claimed))
        return claimed

    def dead_letter(self, rejected: Rejected, ref: RecordRef, now: float, index: int = 0,
                    state_partition: int | None = None) -> bool:
        """Dead-letter a refused record (or scan ``index`` of a batch) once; its mark is kept in
        the dedup marks of ``state_partition`` (default: the record's partition). False if it
        was dead-lettered already."""
        partition = ref.partition if state_partition is None else state_partition
        if not self.claim([f"{ref.topic}|{ref.partition}|{ref.offset}|{index}"], ref.spec, partition, now,
                          DEAD_LETTER_PREFIX):
            return False
        self.sink.send(topics.DLQ, dead_letter_key(ref.key),
                       dead_letter(rejected, ref.topic, ref.partition, ref.offset, utc_rfc3339(now)))
        self.metrics.dead_letters(ref.spec.name, rejected.reason).inc()
        return True

    def sweep(self, now: float, owned: set[int]) -> int:
        """Forget the ids past the horizon of the partitions ``owned``."""
        return self.seen.sweep(now, owned.__contains__)
