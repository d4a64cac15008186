"""Per-venue state in a Faust table, written with an explicit partition and flushed per batch.

Faust writes a table's changelog to the partition of the event being processed; timers have no
current event. Every key here belongs to one source partition (scans and entries are keyed by
venue, so a venue's dedup ids, rechecks, windows and alert memos live with it), so each value
carries its partition and its changelog record goes to that partition, from agents and timers
alike. Changes are applied in memory at once and sent to the changelog on :meth:`flush` (once
per key per batch, not once per scan); the agent flushes before its offsets can be committed.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, Protocol, TypeVar

import msgspec

S = TypeVar("S", bound=msgspec.Struct)


class ChangelogTable(Protocol):
    """The part of ``faust.Table`` used here: its in-memory store."""

    data: Any


def _store_dict(table: ChangelogTable) -> dict[str, Any]:
    """The plain dict behind a table's memory store (its ``data``), which table recovery fills.

    Read and written directly: the store's Mapping methods cost a Python call or two per
    access, several per scan.
    """
    store = table.data
    inner = getattr(store, "data", store)
    return inner  # type: ignore[no-any-return]


# Writes changelog records of one partition, in order: (partition, [(key, value or None for a tombstone)]).
ChangelogSend = Callable[[int, list[tuple[str, Any]]], None]


class _StoreView:
    """A changelogged table's memory store, seen as its plain dict, with the keys changed since
    the last flush (key -> what :meth:`flush` needs to write its changelog record)."""

    def __init__(self, table: ChangelogTable, send: ChangelogSend) -> None:
        self.table = table
        self.send = send
        self._dirty: dict[str, int] = {}
        self._data: dict[str, Any] | None = None

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:  # the store exists once the app is finalized
            self._data = _store_dict(self.table)
        return self._data

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def _send_by_partition(self, records: Iterable[tuple[int, str, Any]]) -> None:
        """Changelog records (partition, key, value), one ``send`` per partition, in order."""
        by_partition: dict[int, list[tuple[str, Any]]] = {}
        for partition, key, value in records:
            by_partition.setdefault(partition, []).append((key, value))
        for partition, grouped in by_partition.items():
            self.send(partition, grouped)


class PartitionedState(_StoreView):
    """A key-value view of a changelogged table whose values are ``[partition, payload]``.

    ``send`` writes one changelog record, encoded as Faust's table recovery reads it (JSON key
    and value, a null value deletes).
    """

    def __init__(self, table: ChangelogTable, send: ChangelogSend) -> None:
        super().__init__(table, send)
        self._spaces: list[Keyspace] = []

    def get(self, key: str) -> Any:
        entry = self.data.get(key)
        return None if entry is None else entry[1]

    def set(self, key: str, value: Any, partition: int) -> None:
        self.data[key] = [partition, value]
        self._dirty[key] = partition

    def delete(self, key: str) -> None:
        entry = self.data.pop(key, None)
        if entry is not None:
            self._dirty[key] = entry[0]

    def flush(self) -> int:
        """Send the latest value (or a tombstone) of every key changed since the last flush."""
        dirty, self._dirty = self._dirty, {}
        data = self.data
        self._send_by_partition((partition, key, data.get(key)) for key, partition in dirty.items())
        return len(dirty)

    def keyspace(self, prefix: str, by_update: bool = False) -> Keyspace:
        """The keys of one concept (all starting with ``prefix``), indexed on their own."""
        space = Keyspace(self, prefix, by_update)
        self._spaces.append(space)
        return space

    def typed(self, prefix: str, kind: type[S], by_update: bool = False) -> TypedKeyspace[S]:
        """The keys of one concept whose values are ``kind`` (a msgspec Struct, written to the
        changelog as the JSON it encodes to)."""
        space = TypedKeyspace(self, prefix, kind, by_update)
        self._spaces.append(space)
        return space

    def reindex(self) -> None:
        """Table recovery filled the store behind the keyspaces' backs: index them anew."""
        for space in self._spaces:
            space.reindex()

    def index_all(self) -> None:
        """Index every keyspace in one walk of the table (each alone would walk all of it). A
        key belongs to the space whose prefix (up to one of its ``|``) it starts with: no prefix
        starts another."""
        by_prefix: dict[str, dict[str, None]] = {}
        for space in self._spaces:
            if space._index is None:
                space._index = by_prefix.setdefault(space.prefix, {})
        if not by_prefix:
            return
        depth = max(prefix.count("|") for prefix in by_prefix)  # the most ``|`` a prefix holds
        for key in self.data:
            if not isinstance(key, str):
                continue
            end = -1
            for _ in range(depth):
                end = key.find("|", end + 1)
                if end < 0:
                    break
                index = by_prefix.get(key[:end + 1])
                if index is not None:
                    index[key] = None
                    break


class Keyspace:
    """One concept's keys in a :class:`PartitionedState`, with an index of its own.

    The state table holds several concepts (rechecks, windows, checkpoints, alert memos,
    district minutes), told apart by a key prefix. A timer of one concept walks its keyspace's
    index, never the whole table: a tick costs what that concept holds, however many alert memos
    the table keeps. The index lists keys in the order they were last set when ``by_update``
    (oldest first, for sweeps that stop at the first live one), else in the order they were made.
    It is rebuilt from the table when it is first needed and after a table recovery.
    """

    __slots__ = ("_dues", "_index", "_set", "by_update", "prefix", "state")

    def __init__(self, state: PartitionedState, prefix: str, by_update: bool = False) -> None:
        self.state = state
        self.prefix = prefix
        self.by_update = by_update
        self._index: dict[str, None] | None = None
        self._set = state.set  # the table's own, bound: a set costs no extra call
        self._dues: list[DueIndex] = []

    def _value(self, entry: list[Any]) -> Any:
        """The value of a stored ``[partition, value]`` entry."""
        return entry[1]

    def get(self, key: str) -> Any:
        entry = self.state.data.get(key)
        return None if entry is None else self._value(entry)

    def due_index(self, due_of: Callable[[Any], float | None], monotone: bool = False) -> DueIndex:
        """An index of this space's keys by when each may next be due (see :class:`DueIndex`),
        kept up to date by :meth:`set` and :meth:`delete` and rebuilt after a recovery."""
        index = DueIndex(due_of, monotone, self._walk)
        self._dues.append(index)
        return index

    def _keys(self) -> dict[str, None]:
        if self._index is None:
            self.state.index_all()  # every space of the table at once: one walk, not one each
        if self._index is None:  # a space the table does not list
            prefix = self.prefix
            self._index = {key: None for key in self.state.data if isinstance(key, str) and key.startswith(prefix)}
        return self._index

    def reindex(self) -> None:
        self._index = None
        for due in self._dues:
            due.reset()

    def __len__(self) -> int:
        return len(self._keys())

    def set(self, key: str, value: Any, partition: int) -> None:
        self._set(key, value, partition)
        index = self._index
        if index is None:
            index = self._keys()
        if self.by_update:
            index.pop(key, None)  # to the end: the most recently set
        index[key] = None
        for due in self._dues:
            due.offer(key, partition, value)

    def delete(self, key: str) -> None:
        self.state.delete(key)
        self._keys().pop(key, None)
        for due in self._dues:
            due.discard(key)

    def oldest(self) -> Iterator[tuple[str, int, Any]]:
        """(key, partition, value), oldest first, without a snapshot: for a walk that stops
        early (a sweep); the space must not change until the walk ends."""
        data = self.state.data
        for key in self._keys():
            entry = data.get(key)
            if entry is not None:
                yield key, entry[0], self._value(entry)

    _walk = oldest  # what a due-time index is built from

    def items(self) -> Iterator[tuple[str, int, Any]]:
        """(key, partition, value) of every key of the space, oldest first; a snapshot, safe to
        change the space while iterating."""
        index, data = self._keys(), self.state.data
        for key in list(index):
            entry = data.get(key)
            if entry is None:  # gone with a revoked partition, or deleted meanwhile
                index.pop(key, None)
                continue
            yield key, entry[0], self._value(entry)


class TypedKeyspace(Keyspace, Generic[S]):
    """A keyspace whose values are one msgspec Struct type.

    Values are kept as the Structs themselves and encoded once, when their changelog record is
    written. Table recovery fills the store with decoded JSON; such a value is converted to its
    Struct the first time it is read, in place (once per key after a recovery).
    """

    __slots__ = ("kind",)

    def __init__(self, state: PartitionedState, prefix: str, kind: type[S], by_update: bool = False) -> None:
        super().__init__(state, prefix, by_update)
        self.kind = kind

    def get(self, key: str) -> S | None:
        entry = self.state.data.get(key)
        return None if entry is None else self._value(entry)

    def _value(self, entry: list[Any]) -> S:
        value = entry[1]
        if type(value) is not self.kind:
            value = entry[1] = msgspec.convert(value, self.kind)  # as recovery read it from the changelog
        return value

    def set(self, key: str, value: S, partition: int) -> None:
        super().set(key, value, partition)

    def oldest(self) -> Iterator[tuple[str, int, S]]:
        return super().oldest()

    def items(self) -> Iterator[tuple[str, int, S]]:
        return super().items()


class DueIndex:
    """The keys of one keyspace by when each may next be due: a min-heap per partition.

    A timer asks for what is due by each owned partition's clock (:meth:`pop_due`) and pays for
    what it gets, not for what the keyspace holds: a tick with a million open windows and none
    due looks at one heap top per partition. An indexed time is a *lower bound*: the concept
    checks the key's state when it pops, acts if it is due, and otherwise :meth:`defer`s it to
    when it will be. With ``monotone`` a key's due never moves earlier (a window's close, a
    checkpoint's last report plus its quiet time), so :meth:`offer` of an indexed key costs one
    dict lookup and never computes ``due_of``; otherwise a change that makes it earlier
    re-indexes it (the entry left behind is skipped when it surfaces). Built from the keyspace
    the first time it is asked after a start or a table recovery.
    """

    __slots__ = ("_at", "_built", "_heaps", "_walk", "due_of", "monotone")

    def __init__(self, due_of: Callable[[Any], float | None], monotone: bool,
                 walk: Callable[[], Iterator[tuple[str, int, Any]]]) -> None:
        self.due_of = due_of  # a stored value -> when it may next be due (None: not by time)
        self.monotone = monotone
        self._walk = walk
        self._at: dict[str, float] = {}  # key -> its indexed time (the live entry of the heap)
        self._heaps: dict[int, list[tuple[float, str]]] = {}
        self._built = False

    def __len__(self) -> int:
        return len(self._at)

    def reset(self) -> None:
        """Forget everything: rebuilt from the keyspace when next asked."""
        self._at, self._heaps, self._built = {}, {}, False

    def offer(self, key: str, partition: int, value: Any) -> None:
        """``key`` was set to ``value``: index it if it is not, or if it is now due earlier."""
        if not self._built:
            return  # the build reads every value as it is then
        at = self._at.get(key)
        if at is not None and self.monotone:
            return
        due = self.due_of(value)
        if due is not None and (at is None or due < at):
            self._push(key, partition, due)

    def defer(self, key: str, partition: int, due: float) -> None:
        """Index ``key`` at ``due`` (a popped key found not due yet), unless it is indexed earlier."""
        at = self._at.get(key)
        if at is None or due < at:
            self._push(key, partition, due)

    def discard(self, key: str) -> None:
        self._at.pop(key, None)  # its heap entry is skipped when it surfaces

    def pop_due(self, partition: int, until: float) -> list[str]:
        """The keys of ``partition`` indexed at or before ``until``, taken out of the index."""
        if not self._built:
            self._build()
        heap = self._heaps.get(partition)
        if not heap or heap[0][0] > until:
            return []
        at, found = self._at, []
        while heap and heap[0][0] <= until:
            due, key = heapq.heappop(heap)
            if at.get(key) == due:
                del at[key]
                found.append(key)
        return found

    def _push(self, key: str, partition: int, due: float) -> None:
        self._at[key] = due
        heap = self._heaps.get(partition)
        if heap is None:
            heap = self._heaps[partition] = []
        heapq.heappush(heap, (due, key))

    def _build(self) -> None:
        self._built = True
        for key, partition, value in self._walk():
            due = self.due_of(value)
            if due is not None:
                self._at[key] = due
                self._heaps.setdefault(partition, []).append((due, key))
        for heap in self._heaps.values():
            heapq.heapify(heap)


PARTITION_SPAN = 4096  # a dedup mark packs its partition below this


class DedupMarks(_StoreView):
    """Ids already handled, each with its source partition and an expiry, in a changelogged table.

    A mark is one int, ``expiry_seconds * PARTITION_SPAN + partition``, in memory and in the
    changelog. The dict of marks thus holds only strings and ints, which Python's garbage
    collector does not track: with a container per mark, every full collection walked all of
    them (millions over a 48-hour horizon), pausing the worker for longer the longer it ran.
    Marks are kept in the order they were made, so a sweep stops at the first one not expired.
    """

    def __len__(self) -> int:
        return len(self.data)

    def claim(self, keys: list[str], expires_at: float, partition: int) -> list[int]:
        """Mark the ``keys`` not marked yet (a key repeated in ``keys`` counts once); return
        their positions in ``keys``."""
        data, dirty = self.data, self._dirty
        mark = math.ceil(expires_at) * PARTITION_SPAN + partition
        fresh = []
        for i, key in enumerate(keys):
            if key not in data:
                data[key] = dirty[key] = mark
                fresh.append(i)
        return fresh

    def flush(self) -> int:
        """Send every mark made (or swept) since the last flush to the changelog."""
        dirty, self._dirty = self._dirty, {}
        self._send_by_partition((mark % PARTITION_SPAN, key, mark if mark >= 0 else None)
                                for key, mark in dirty.items())
        return len(dirty)

    def sweep(self, now: float, owned: Callable[[int], bool], limit: int = 200_000) -> int:
        """Forget up to ``limit`` marks expired by ``now`` of the partitions ``owned``.

        Walks marks oldest first and stops at the first one not yet expired; marks recovered
        from the changelog come partition by partition, so a few may outlive their expiry by
        the spread of one partition's marks until a later sweep reaches them.
        """
        expired: list[tuple[str, int]] = []
        until = now * PARTITION_SPAN
        for key, mark in self.data.items():
            if mark > until or len(expired) >= limit:
                break
            expired.append((key, mark))
        removed = 0
        for key, mark in expired:
            partition = mark % PARTITION_SPAN
            if owned(partition):
                del self.data[key]
                self._dirty[key] = -PARTITION_SPAN + partition  # a tombstone to the mark's partition
                removed += 1
        return removed
