"""The worker's table store: RocksDB on disk, one database per changelog partition, its values
also held in memory.

hcs reads and writes its tables' values as a plain dict (:mod:`streams.kafka.state`: a scan's
state costs a dict lookup, not a database read and a JSON decode) and writes their changelogs
itself. This store keeps that dict and, beside it, a RocksDB database per partition holding what
the changelog holds, with the offset of the last changelog record applied (Faust's
``persisted_offset``). A worker that restarts with its data dir loads each partition from disk
and reads only the changelog records written after that offset: ready in seconds, however long
the changelog.

The database is written only with what the changelog already holds: the records of a flush are
applied once Kafka acknowledged them (at-least-once) or their transaction committed
(exactly-once), by :meth:`Store.apply_written`, which :class:`streams.kafka.output.BatchedOutput`
calls. So the disk is always a prefix of the changelog, never ahead of it: a dedup mark on disk
always stands for an output that was written, and recovery from the persisted offset onwards
(idempotent, in order) brings it to the changelog's end.

Faust's own RocksDB store writes through ``current_event()`` (a timer has none) and keeps no
values in memory; everything else (the databases' paths and options, opening them on assignment,
recovery into them, persisted offsets) is Faust's, inherited.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from faust.stores import rocksdb
from faust.types import TP, AppT, CollectionT, EventT
from rocksdict import WriteBatch, WriteOptions

log = logging.getLogger(__name__)

# Faust's RocksDB defaults are sized for a store that serves every read from disk (2 GiB block
# cache, 3 x 64 MiB write buffers per partition's database). Here reads are served from memory
# and the databases are written in batches: small buffers and caches, per partition.
OPTIONS = {"write_buffer_size": 8 * 1024 * 1024, "max_write_buffer_number": 2,
           "block_cache_size": 16 * 1024 * 1024, "block_cache_compressed_size": 0}
LOAD_YIELD_EVERY = 20_000  # keys loaded between two yields to the event loop
# No write-ahead log: the changelog is the log. After a crash the database holds a prefix of what
# was written to it (memtables are flushed in order), its persisted offset included: recovery reads
# the changelog from there.
_NO_WAL = WriteOptions()
_NO_WAL.disable_wal = True  # type: ignore[method-assign,assignment]  # a property at run time, a method in the stubs


class Store(rocksdb.Store):
    """Faust's RocksDB store whose values are also kept in :attr:`data`, a dict (see the module)."""

    def __init__(self, url: Any, app: AppT, table: CollectionT, **kwargs: Any) -> None:
        options = {**OPTIONS, **(kwargs.pop("options", None) or {}), "driver": "rocksdict"}
        super().__init__(url, app, table, options=options, **kwargs)
        self.data: dict[Any, Any] = {}

    def apply_written(self, partition: int, records: list[tuple[bytes | None, bytes | None]],
                      last_offset: int) -> None:
        """Apply changelog records (raw key, raw value or None for a tombstone) that Kafka holds,
        the last of them at ``last_offset``: one atomic write with the new persisted offset."""
        batch = WriteBatch(raw_mode=True)
        for key, value in records:
            if key is None:  # never: a changelog record always has its key
                continue
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        batch.put(self.offset_key, str(last_offset).encode())
        self._db_for_partition(partition).write(batch)

    def _open_for_partition(self, partition: int) -> Any:
        db = super()._open_for_partition(partition)
        db.set_write_options(_NO_WAL)
        return db

    def apply_changelog_batch(self, batch: Iterable[EventT[Any]], to_key: Callable[[Any], Any],
                              to_value: Callable[[Any], Any]) -> None:
        """Recovery: the records to the databases (Faust's), and to the dict."""
        events = list(batch)
        super().apply_changelog_batch(events, to_key, to_value)
        data = self.data
        for event in events:
            key = to_key(event.key)
            if event.message.value is None:
                data.pop(key, None)
            else:
                data[key] = to_value(event.value)

    async def assign_partitions(self, table: CollectionT, tps: set[TP], generation_id: int = 0) -> None:
        """Open the newly assigned partitions' databases (Faust's) and load what they hold."""
        await super().assign_partitions(table, tps, generation_id)
        standbys = self.app.assignor.assigned_standbys()
        mine = table.changelog_topic.topics
        for tp in sorted(tps):
            if tp.topic in mine and tp not in standbys and tp.partition in self._dbs:
                await self._load(tp.partition)

    async def _load(self, partition: int) -> None:
        data, loads, skip = self.data, orjson.loads, self.offset_key
        loaded = 0
        for key, value in self._dbs[partition].items():
            if key == skip:
                continue
            data[loads(key)] = loads(value)
            loaded += 1
            if loaded % LOAD_YIELD_EVERY == 0:
                await asyncio.sleep(0)
        if loaded:
            log.info("table %s partition %d: %d keys loaded from disk", self.table.name, partition, loaded)

    def reset_state(self) -> None:
        super().reset_state()
        self.data.clear()
