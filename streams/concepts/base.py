"""What every concept shares with the worker: where a record came from, where outputs go, and
what a concept declares — the records it consumes and the timers it needs.

The worker walks each concept's :meth:`Concept.inputs` (one drain per input topic) and
:meth:`Concept.timers` (grouped by interval into one tick, in the order the concepts are listed),
and hands the handlers plain values: a record's bytes, its :class:`RecordRef` and ``now``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from streams.contract import topics


class Sink(Protocol):
    """Where the worker's outputs go (the batched producer; a recorder in tests)."""

    def send(self, spec: topics.TopicSpec, key: bytes | None, value: bytes) -> None: ...

    def send_many(self, spec: topics.TopicSpec, key: bytes | None, values: list[bytes]) -> None:
        """Several records of one key, in order."""


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


# A record's value (None: a tombstone), where it came from, and the processing time of its batch.
Handler = Callable[[bytes | None, RecordRef, float], None]


@dataclass(frozen=True, slots=True)
class Input:
    """A topic a concept consumes: its drain's name, the topic, and the handler of each record."""

    drain: str
    spec: topics.TopicSpec
    handle: Handler
    # Keyed by venue (the state's partitions are the venue topics'): a partition revoked from
    # this worker is released from the concepts' caches.
    by_venue: bool = True
    # How long a handled batch may wait before its own write (seconds): its outputs ride in the
    # next write of another drain meanwhile, which costs nothing more; a write of its own is a
    # transaction (a round trip) of a few records. For inputs that trickle (alerts read back).
    linger_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Timer:
    """Time-driven work: ``run(now)`` every ``every_s`` seconds once everything it reads is loaded.
    Each run costs what is due (the concepts' due-time indexes), not what is stored."""

    every_s: float
    run: Callable[[float], object]


class Concept(Protocol):
    """One capability of the worker: its state, its handlers and its timers."""

    def inputs(self) -> Sequence[Input]:
        """The topics it consumes (none: it is fed by other concepts' handlers)."""
        ...

    def timers(self) -> Sequence[Timer]:
        """Its time-driven work."""
        ...


# A positive NAT read (a scan's certificate, an isolation point's sample): (event_id, person_ref,
# district, sampled_at, source partition, now) -> whether it started a case (source tracing).
NatPositive = Callable[[str, str, str, float, int, float], bool]
