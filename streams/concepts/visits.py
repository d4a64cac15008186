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
from streams.contract.models import ScanEvent
from streams.kafka.state import PartitionedState
from streams.kafka.visit_keys import Keys, visit_keys
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

    def put_keys(self, partition: int, keys: Iterable[Keys]) -> None: ...

    def delete(self, partition: int, visits: Iterable[Visit]) -> None: ...

    def started_before(self, partition: int, before: float, limit: int) -> list[Visit]: ...

    def estimate(self, partition: int) -> int: ...

    def of_person(self, partition: int, person_ref: str, since: float, until: float) -> Iterator[Visit]: ...

    def at_venue(self, partition: int, venue_id: str, since: float, until: float) -> Iterator[Visit]: ...


class Visits:
    """Every decided scan's visit, written per partition once per batch, and swept at retention."""

    def __init__(self, log: Callable[[], VisitLog], send: RawChangelogSend,
                 tombstone: Callable[[Visit], tuple[bytes, None]], state: PartitionedState, policy: Policy,
                 owned: Callable[[], set[int]], clock: Callable[[], float]) -> None:
        self._log = log  # the store, made once the app is finalized
        self.venues = state.typed(VENUE_PREFIX, VenueMeta)
        self.observers: list[VisitObserver] = []
        self._wanted: list[Callable[[], bool]] = []
        self.send, self.tombstone = send, tombstone
        self.policy = policy
        self.owned = owned
        self.clock = clock  # the wall clock: retention of personal data is by real time
        self._pending: dict[int, list[tuple[list[ScanEvent], list[float]]]] = {}  # (scans, dwells) per record
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

    def tell(self, observer: VisitObserver, wanted: Callable[[], bool] = lambda: True) -> None:
        """Tell ``observer`` of every flush's visits from now on, while ``wanted()`` (the worker's
        wiring does: source tracing, while it has cases)."""
        self.observers.append(observer)
        self._wanted.append(wanted)

    def watched(self) -> bool:
        return any(wanted() for wanted in self._wanted)

    def venue(self, venue_id: str) -> VenueMeta | None:
        return self.venues.get(VENUE_PREFIX + venue_id)

    def add(self, partition: int, scans: list[ScanEvent], dwells: list[float]) -> None:
        """A record's decided scans whose venue type makes a visit, with each one's dwell (seconds)."""
        pending = self._pending.get(partition)
        if pending is None:
            self._pending[partition] = [(scans, dwells)]
        else:
            pending.append((scans, dwells))
        venues = self.venues
        seen: set[str] = set()
        for scan in reversed(scans):  # each venue as its last scan says
            venue_id = scan.venue_id
            if venue_id in seen:
                continue
            seen.add(venue_id)
            known = venues.get(VENUE_PREFIX + venue_id)
            if known is None or known.venue_type != scan.venue_type or known.district != scan.district:
                venues.set(VENUE_PREFIX + venue_id, VenueMeta(scan.venue_type, scan.district), partition)

    def flush(self) -> int:
        """Write the visits added since the last flush: to the store and to its changelog; then
        tell the observers (source tracing: late visits at a traced venue)."""
        if not self._pending:
            return 0
        pending, self._pending = self._pending, {}
        log, written = self.log, 0
        now = self.clock()
        kept_since = now - self.retention_s(now)
        watched = self.watched()
        for partition, chunks in pending.items():
            keys, made = [], []
            for scans, dwells in chunks:
                for scan, dwell in zip(scans, dwells, strict=True):
                    t = scan.event_time
                    if t < kept_since:
                        continue  # a late upload's visit may be past retention already: never kept
                    start, end = int(t), int(t + dwell)
                    keys.append(visit_keys(scan.venue_id, start, scan.event_id, scan.person_ref, end))
                    if watched:
                        made.append(Visit(scan.venue_id, start, scan.event_id, scan.person_ref, end))
            if not keys:
                continue
            log.put_keys(partition, keys)
            self.send(partition, [pairs[0] for pairs in keys])  # the venue key and value: the changelog record
            written += len(keys)
            if made:
                for observe in self.observers:
                    observe(partition, made, now)
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
