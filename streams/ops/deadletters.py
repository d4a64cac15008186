"""``hcs dlq``: the dead letters of ``hcs.dlq.v1`` as a table an operator or a device vendor reads.

Each row says where the record came from (topic, partition, offset), why it was refused (the
reason and the detail naming the field at fault) and its key (a venue, a point, a pseudonym) —
never the payload: it holds what a device sent, refused values (ID numbers, names) hidden or
not. Read from the topic's start, or from ``--since`` (by the dead letters' Kafka timestamps).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from streams.ops.console import columns, topic_partitions
from streams.times import local_time

READ_TIMEOUT_S = 20.0
DETAIL_CHARS = 90
KEY_CHARS = 40


async def read_dead_letters(client: Mapping[str, Any], topic: str, since: float | None = None,
                            timeout_s: float = READ_TIMEOUT_S) -> list[dict[str, Any]]:
    """Every dead letter of ``topic`` (from ``since``, epoch seconds), read to the end, with
    ``_key`` and ``_at`` (its Kafka timestamp) added."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(**client, group_id=None, enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await topic_partitions(consumer, topic)]
        if not partitions:
            return []  # no dead letter topic yet: nothing was refused
        consumer.assign(partitions)
        if since is None:
            await consumer.seek_to_beginning(*partitions)
        else:
            found = await consumer.offsets_for_times({tp: int(since * 1000) for tp in partitions})
            ends = await consumer.end_offsets(partitions)
            for tp in partitions:
                at = found.get(tp)
                consumer.seek(tp, at.offset if at is not None else ends[tp])
        ends = await consumer.end_offsets(partitions)
        letters: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in partitions]
            if all(at >= ends[tp] for at, tp in zip(positions, partitions, strict=True)):
                break
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.value is None:
                        continue
                    value = orjson.loads(record.value)
                    value["_key"] = record.key.decode(errors="replace") if record.key is not None else ""
                    value["_at"] = record.timestamp / 1000
                    letters.append(value)
        return letters
    finally:
        await consumer.stop()


COLUMNS = ("received", "topic", "partition@offset", "reason", "key", "detail")


def table(letters: Iterable[Mapping[str, Any]], reason: str | None = None, source: str | None = None) -> list[str]:
    """The dead letters as lines of a table, oldest first, filtered; never their payloads."""
    rows = [d for d in letters if (reason is None or d["reason"] == reason)
            and (source is None or d["source_topic"].endswith(source))]
    rows.sort(key=lambda d: d["_at"])
    cells = [COLUMNS] + [(local_time(d["_at"]),
                          d["source_topic"], f"{d['partition']}@{d['offset']}", d["reason"],
                          _cut(d["_key"], KEY_CHARS), _cut(d["detail"], DETAIL_CHARS)) for d in rows]
    return columns(cells) if rows else ["no dead letters match"]


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
