"""The worker's table store on disk (streams.kafka.store): what Kafka holds, written to RocksDB
with its offset, loaded into memory when a partition is assigned again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import faust
from faust.types import TP

from streams.kafka.store import Store


def table_store(data_dir: Path) -> tuple[Any, Store]:
    app = faust.App("store-test", store="hcs://", datadir=str(data_dir), autodiscover=False)
    app.finalize()
    table = app.Table("state", partitions=4, key_type=str)
    store = table.data
    assert isinstance(store, Store)
    return table, store


def test_records_kafka_holds_are_on_disk_with_their_offset_and_loaded_on_assignment(tmp_path: Path) -> None:
    table, store = table_store(tmp_path)
    changelog = table.changelog_topic.get_topic_name()
    store.apply_written(1, [(b'"w|a"', b'[1,{"n":1}]'), (b'"w|b"', b"[1,2]")], 41)
    store.apply_written(1, [(b'"w|b"', None), (b'"w|c"', b'[1,"x"]')], 43)
    store.apply_written(2, [(b'"w|z"', b"[2,0]")], 7)
    assert store.persisted_offset(TP(changelog, 1)) == 43
    assert store.persisted_offset(TP(changelog, 2)) == 7
    assert store.persisted_offset(TP(changelog, 3)) is None
    assert store.data == {}  # the dict is the caller's: written before, never from here
    store._dbs.clear()  # as a stopped worker leaves it (Faust closes its databases so)

    table, again = table_store(tmp_path)  # a restart with the data dir kept
    asyncio.run(again.assign_partitions(table, {TP(changelog, 1)}))
    assert again.data == {"w|a": [1, {"n": 1}], "w|c": [1, "x"]}  # not partition 2's, not the offset
    assert again.persisted_offset(TP(changelog, 1)) == 43
