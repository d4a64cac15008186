"""Visits on disk: every decided scan's visit, in RocksDB per venue partition, never in memory.

Two weeks of visits of a city do not fit in a worker's memory; a trace needs two kinds of read
of them: a person's visits in a time range (the case's own) and a venue's visits in a time range
(who was there). Each visit is three keys in its partition's database, ordered for those reads
and for retention:

- ``v`` venue ``\\0`` start ``\\0`` event_id -> person ``\\0`` end   (who was at a venue, by time)
- ``p`` person ``\\0`` start ``\\0`` venue ``\\0`` event_id -> end  (a person's visits, by time)
- ``t`` start ``\\0`` venue ``\\0`` event_id -> person           (oldest first: retention)

``start``/``end`` are whole epoch seconds, zero-padded so that bytes order is time order. The
changelog holds one record per visit, its venue key and value as they are (a null value when
retention removed it), from which recovery rebuilds all three keys; a visit past retention is
never restored from the changelog, whatever it still holds.

The databases are written without RocksDB's write-ahead log: the changelog is the log. A crash
loses at most what was not yet flushed from memory, and what is on disk is then a prefix of what
was written, the persisted offset included, so recovery reads the changelog from there.

Visits are written to the database when they are made (a visit is identified by its scan's
``event_id``: writing one again, as a redelivered scan after a crash would, changes nothing); the
persisted offset follows the changelog as Kafka acknowledges it (:meth:`VisitStore.apply_written`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from faust.stores import rocksdb
from faust.types import TP, AppT, CollectionT, EventT
from rocksdict import WriteBatch, WriteOptions

from streams.kafka.visit_keys import Keys, visit_keys
from streams.kafka.visit_keys import time_key as _t
from streams.rules.tracing import Visit

SEP = b"\0"
_NO_WAL = WriteOptions()
_NO_WAL.disable_wal = True  # type: ignore[method-assign,assignment]  # a property at run time, a method in the stubs
OPTIONS = {"write_buffer_size": 16 * 1024 * 1024, "max_write_buffer_number": 2,
           "block_cache_size": 32 * 1024 * 1024, "block_cache_compressed_size": 0}


def _keys(visit: Visit) -> Keys:
    return visit_keys(visit.venue_id, visit.start, visit.event_id, visit.person_ref, visit.end)


def changelog_record(visit: Visit) -> tuple[bytes, bytes]:
    """A visit's changelog record: its venue key and value, as the store holds them."""
    return _keys(visit)[0]


def tombstone(visit: Visit) -> tuple[bytes, None]:
    return _keys(visit)[0][0], None


def _from_venue_key(key: bytes, value: bytes) -> Visit:
    venue, start, event_id = key[1:].split(SEP, 2)
    person, end = value.split(SEP)
    return Visit(venue.decode(), int(start), event_id.decode(), person.decode(), int(end))


class VisitStore(rocksdb.Store):
    """The visits table's store: RocksDB only (see the module)."""

    def __init__(self, url: Any, app: AppT, table: CollectionT, **kwargs: Any) -> None:
        options = {**OPTIONS, **(kwargs.pop("options", None) or {}), "driver": "rocksdict"}
        super().__init__(url, app, table, options=options, **kwargs)
        self.kept_since: Callable[[], float] = lambda: 0.0  # visits that started before are not kept

    def _open_for_partition(self, partition: int) -> Any:
        db = super()._open_for_partition(partition)
        db.set_write_options(_NO_WAL)
        return db

    # -- writes ------------------------------------------------------------------------------

    def put(self, partition: int, visits: Iterable[Visit]) -> None:
        self.put_keys(partition, [_keys(visit) for visit in visits])

    def put_keys(self, partition: int, keys: Iterable[Keys]) -> None:
        """Visits already made into their keys (:func:`visit_keys`): one write."""
        batch = WriteBatch(raw_mode=True)
        put = batch.put
        for (k1, v1), (k2, v2), (k3, v3) in keys:
            put(k1, v1)
            put(k2, v2)
            put(k3, v3)
        self._db_for_partition(partition).write(batch)

    def delete(self, partition: int, visits: Iterable[Visit]) -> None:
        batch = WriteBatch(raw_mode=True)
        for visit in visits:
            for key, _ in _keys(visit):
                batch.delete(key)
        self._db_for_partition(partition).write(batch)

    def apply_written(self, partition: int, records: list[tuple[bytes | None, bytes | None]], last_offset: int) -> None:
        """The changelog holds the visits up to ``last_offset`` (they are on disk already)."""
        self._db_for_partition(partition).put(self.offset_key, str(last_offset).encode())

    def apply_changelog_batch(self, batch: Iterable[EventT[Any]], to_key: Callable[[Any], Any],
                              to_value: Callable[[Any], Any]) -> None:
        """Recovery: each visit's three keys from its changelog record, unless past retention."""
        kept_since = self.kept_since()
        # Per partition, each visit's last record (a visit, or None where it was removed): in order.
        latest: dict[int, dict[tuple[str, int, str], Visit | None]] = {}
        offsets: dict[TP, int] = {}
        for event in batch:
            message = event.message
            offsets[message.tp] = max(message.offset, offsets.get(message.tp, -1))
            if message.key is None:
                continue
            venue, start, event_id = message.key[1:].split(SEP, 2)
            ident = (venue.decode(), int(start), event_id.decode())
            visit = None
            if message.value is not None:
                if ident[1] < kept_since:
                    continue
                visit = _from_venue_key(message.key, message.value)
            latest.setdefault(message.partition, {})[ident] = visit
        for partition, visits in latest.items():
            gone = [self._get_visit(partition, *key) for key, visit in visits.items() if visit is None]
            self.delete(partition, [visit for visit in gone if visit is not None])
            self.put(partition, [visit for visit in visits.values() if visit is not None])
        for tp, offset in offsets.items():
            self.set_persisted_offset(tp, offset)

    def _get_visit(self, partition: int, venue: str, start: int, event_id: str) -> Visit | None:
        key = b"v" + venue.encode() + SEP + _t(start) + SEP + event_id.encode()
        value = self._db_for_partition(partition).get(key)
        return None if value is None else _from_venue_key(key, value)

    # -- reads -------------------------------------------------------------------------------

    def _range(self, partition: int, low: bytes, high: bytes) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) with ``low <= key < high``, in order."""
        if partition not in self._dbs:
            return
        it = self._dbs[partition].iter()
        it.seek(low)
        while it.valid():
            key = it.key()
            if key >= high:
                break
            yield key, it.value()
            it.next()

    def of_person(self, partition: int, person_ref: str, since: float, until: float) -> Iterator[Visit]:
        """The person's visits on ``partition`` that started in ``[since, until]``."""
        prefix = b"p" + person_ref.encode() + SEP
        kept = max(since, self.kept_since())
        for key, value in self._range(partition, prefix + _t(kept), prefix + _t(until + 1)):
            start, venue, event_id = key[len(prefix):].split(SEP, 2)
            yield Visit(venue.decode(), int(start), event_id.decode(), person_ref, int(value))

    def at_venue(self, partition: int, venue_id: str, since: float, until: float) -> Iterator[Visit]:
        """The visits at ``venue_id`` that started in ``[since, until]``."""
        prefix = b"v" + venue_id.encode() + SEP
        kept = max(since, self.kept_since())
        for key, value in self._range(partition, prefix + _t(kept), prefix + _t(until + 1)):
            start, event_id = key[len(prefix):].split(SEP, 1)
            person, end = value.split(SEP)
            yield Visit(venue_id, int(start), event_id.decode(), person.decode(), int(end))

    def started_before(self, partition: int, before: float, limit: int) -> list[Visit]:
        """Up to ``limit`` visits of ``partition`` that started before ``before``, oldest first
        (their keys, for deletion: ``end`` is not read, and is 0)."""
        found: list[Visit] = []
        for key, value in self._range(partition, b"t", b"t" + _t(before)):
            start, venue, event_id = key[1:].split(SEP, 2)
            found.append(Visit(venue.decode(), int(start), event_id.decode(), value.decode(), 0))
            if len(found) >= limit:
                break
        return found

    def estimate(self, partition: int) -> int:
        """About how many visits ``partition`` holds (RocksDB's estimate of its keys, / 3)."""
        db = self._dbs.get(partition)
        if db is None:
            return 0
        return int(db.property_int_value("rocksdb.estimate-num-keys") or 0) // 3
