"""Per-venue state in a Faust table, written with an explicit partition.

Faust writes a table's changelog to the partition of the event being processed; timers have no
current event. Every key here belongs to one source partition (scans are keyed by venue, so a
venue's dedup ids, rechecks and alert memos live with it), so each value carries its partition
and writes go to that partition's changelog explicitly, from agents and timers alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol


class ChangelogTable(Protocol):
    """The part of ``faust.Table`` used here."""

    data: Any

    def send_changelog(self, partition: int | None, key: Any, value: Any,
                       key_serializer: Any = None, value_serializer: Any = None) -> Any: ...


class PartitionedState:
    """A key-value view of a changelogged table whose values are ``[partition, payload]``."""

    def __init__(self, table: ChangelogTable) -> None:
        self.table = table

    def get(self, key: str) -> Any:
        entry = self.table.data.get(key)
        return None if entry is None else entry[1]

    def __contains__(self, key: str) -> bool:
        return key in self.table.data

    def set(self, key: str, value: Any, partition: int) -> None:
        entry = [partition, value]
        self.table.data[key] = entry
        self.table.send_changelog(partition, key, entry)

    def delete(self, key: str) -> None:
        entry = self.table.data.get(key)
        if entry is None:
            return
        del self.table.data[key]
        self.table.send_changelog(entry[0], key, None, value_serializer="raw")

    def items(self, prefix: str) -> Iterator[tuple[str, int, Any]]:
        """(key, partition, value) of every key with ``prefix``; a snapshot, safe to delete while iterating."""
        for key, entry in list(self.table.data.items()):
            if isinstance(key, str) and key.startswith(prefix):
                yield key, entry[0], entry[1]
