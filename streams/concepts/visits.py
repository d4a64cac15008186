"""Visits: every decided scan is a visit, kept on disk for source tracing, and no longer than
its retention.

The scan path hands each record's visits over at once (:meth:`Visits.add`); they are written to
the venue partition's visit store and its changelog when the batch's state is (:meth:`flush`).
Every minute, visits older than ``visit_retention_days`` (by event time, at the wall clock) are
deleted from the store, and from the changelog by a tombstone each; reads and recovery never
reach past the retention either (:mod:`streams.kafka.visits`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

import msgspec

from streams.concepts.base import Input, Timer
from streams.kafka.state import PartitionedState
from streams.rules.policy import Policy
from streams.rules.tracing import DAY_S, Visit

SWEEP_S = 60.0
SWEEP_LIMIT = 50_000  # visits deleted per partition per sweep at most (the next sweep goes on)

# Writes changelog records (raw key, raw value or None) of one partition, in order.
RawChangelogSend = Callable[[int, list[tuple[bytes | None, bytes | None]]], None]


VENUE_PREFIX = "vm|"  # in the state table: venue_id -> VenueMeta, on the venue's partition


class VenueMeta(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """What an exposure says of the venue where it happened (a visit keeps only its venue_id)."""

    venue_type: str
    district: str


# Told of each flush's visits of a partition, once they are on disk: (partition, visits, now).
VisitObserver = Callable[[int, list[Visit], float], None]


class VisitLog(Protocol):
    """What the visits concept needs of the on-disk store (:class:`streams.kafka.visits.VisitStore`)."""

    kept_since: Callable[[], float]

    def put(self, partition: int, visits: Iterable[Visit]) -> None: ...

    def delete(self, partition: int, visits: Iterable[Visit]) -> None: ...

    def started_before(self, partition: int, before: float, limit: int) -> list[Visit]: ...

    def estimate(self, partition: int) -> int: ...

    def of_person(self, partition: int, person_ref: str, since: float, until: float) -> Iterator[Visit]: ...

    def at_venue(self, partition: int, venue_id: str, since: float, until: float) -> Iterator[Visit]: ...


class Visits:
    """Every decided scan's visit, written per partition once per batch, and swept at retention."""

    def __init__(self, log: Callable[[], VisitLog], send: RawChangelogSend,
                 record: Callable[[Visit], tuple[bytes, bytes]], tombstone: Callable[[Visit], tuple[bytes, None]],
                 state: PartitionedState, policy: Policy, owned: Callable[[], set[int]],
                 clock: Callable[[], float]) -> None:
        self._log = log  # the store, made once the app is finalized
        self.venues = state.typed(VENUE_PREFIX, VenueMeta)
        self.observers: list[VisitObserver] = []
        self.send, self.record, self.tombstone = send, record, tombstone
        self.policy = policy
        self.owned = owned
        self.clock = clock  # the wall clock: retention of personal data is by real time
        self._pending: dict[int, list[Visit]] = {}
        self._bound = False

    @property
    def log(self) -> VisitLog:
        log = self._log()
        if not self._bound:
            log.kept_since = self.kept_since
            self._bound = True
        return log

    def inputs(self) -> Sequence[Input]:
        return ()  # fed by the scan path

    def timers(self) -> Sequence[Timer]:
        return (Timer(SWEEP_S, self.sweep),)

    def retention_s(self, now: float) -> float:
        return self.policy.defaults_at(now).visit_retention_days * DAY_S

    def kept_since(self) -> float:
        """Visits that started before this are past retention now."""
        now = self.clock()
        return now - self.retention_s(now)

    def tell(self, observer: VisitObserver) -> None:
        """Tell ``observer`` of every flush's visits from now on (the worker's wiring does)."""
        self.observers.append(observer)

    def venue(self, venue_id: str) -> VenueMeta | None:
        return self.venues.get(VENUE_PREFIX + venue_id)

    def add(self, partition: int, visits: list[Visit], venues: dict[str, tuple[str, str]] | None = None) -> None:
        """A record's visits; ``venues``: each venue's (type, district) as its scans said."""
        if venues:
            for venue_id, (venue_type, district) in venues.items():
                known = self.venues.get(VENUE_PREFIX + venue_id)
                if known is None or known.venue_type != venue_type or known.district != district:
                    self.venues.set(VENUE_PREFIX + venue_id, VenueMeta(venue_type, district), partition)
        pending = self._pending.get(partition)
        if pending is None:
            self._pending[partition] = visits
        else:
            pending.extend(visits)

    def flush(self) -> int:
        """Write the visits added since the last flush: to the store and to its changelog; then
        tell the observers (source tracing: late visits at a traced venue)."""
        if not self._pending:
            return 0
        pending, self._pending = self._pending, {}
        log, record, written = self.log, self.record, 0
        now = self.clock()
        kept_since = now - self.retention_s(now)
        for partition, visits in pending.items():
            visits = [visit for visit in visits if visit.start >= kept_since]  # a late upload's may be: never kept
            if not visits:
                continue
            log.put(partition, visits)
            self.send(partition, [record(visit) for visit in visits])
            written += len(visits)
            for observe in self.observers:
                observe(partition, visits, now)
        return written

    def sweep(self, now: float) -> int:
        """Delete the visits past retention of the partitions this worker owns."""
        before, log, removed = now - self.retention_s(now), self.log, 0
        for partition in sorted(self.owned()):
            expired = log.started_before(partition, before, SWEEP_LIMIT)
            if expired:
                log.delete(partition, expired)
                self.send(partition, [self.tombstone(visit) for visit in expired])
                removed += len(expired)
        return removed

    def stored(self) -> int:
        """About how many visits this worker's partitions hold (for ``hcs_visits_stored``)."""
        log = self.log
        return sum(log.estimate(partition) for partition in self.owned())
