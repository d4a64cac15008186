"""Per-venue state in a Faust table, written with an explicit partition and flushed per batch.

Faust writes a table's changelog to the partition of the event being processed; timers have no
current event. Every key here belongs to one source partition (scans and entries are keyed by
venue, so a venue's dedup ids, rechecks, windows and alert memos live with it), so each value
carries its partition and its changelog record goes to that partition, from agents and timers
alike. Changes are applied in memory at once and sent to the changelog on :meth:`flush` (once
per key per batch, not once per scan); the agent flushes before its offsets can be committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol


class ChangelogTable(Protocol):
    """The part of ``faust.Table`` used here: its in-memory store."""

    data: Any


ChangelogSend = Callable[[int, str, Any], None]  # (partition, key, value or None for a tombstone)


class PartitionedState:
    """A key-value view of a changelogged table whose values are ``[partition, payload]``.

    ``send`` writes one changelog record, encoded as Faust's table recovery reads it (JSON key
    and value, a null value deletes).
    """

    def __init__(self, table: ChangelogTable, send: ChangelogSend) -> None:
        self.table = table
        self.send = send
        self._dirty: dict[str, int] = {}

    def get(self, key: str) -> Any:
        entry = self.table.data.get(key)
        return None if entry is None else entry[1]

    def __contains__(self, key: str) -> bool:
        return key in self.table.data

    def set(self, key: str, value: Any, partition: int) -> None:
        self.table.data[key] = [partition, value]
        self._dirty[key] = partition

    def delete(self, key: str) -> None:
        entry = self.table.data.get(key)
        if entry is None:
            return
        del self.table.data[key]
        self._dirty[key] = entry[0]

    def flush(self) -> int:
        """Send the latest value (or a tombstone) of every key changed since the last flush."""
        dirty, self._dirty = self._dirty, {}
        data = self.table.data
        for key, partition in dirty.items():
            self.send(partition, key, data.get(key))
        return len(dirty)

    def items(self, prefix: str) -> Iterator[tuple[str, int, Any]]:
        """(key, partition, value) of every key with ``prefix``; a snapshot, safe to delete while iterating."""
        for key, entry in list(self.table.data.items()):
            if isinstance(key, str) and key.startswith(prefix):
                yield key, entry[0], entry[1]
