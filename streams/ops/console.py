"""What the operators' commands share (``hcs finding``, ``hcs findings``, ``hcs policy``,
``hcs replay``): writing their records to a topic, and printing their tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson


async def send_records(client: Mapping[str, Any], topic: str, records: Iterable[tuple[bytes, bytes | None]]) -> None:
    """Write ``records`` (key, value; a None value is a tombstone) in order, each acknowledged by
    every in-sync replica."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**client, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """``rows`` (the header first) as lines of left-aligned columns two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


async def latest_values(client: Mapping[str, Any], topic: str, name: str,
                        timeout_s: float = 20.0) -> dict[str, dict[str, Any]]:
    """Every key's latest value (decoded JSON) on the compacted ``topic``, read to its end; a key
    whose latest record is a tombstone is not there. ``name`` names the view in its log lines."""
    from streams.kafka.views import ReplicatedView

    view: ReplicatedView[str, dict[str, Any]] = ReplicatedView.of(name, topic, client, _json_record)
    await view.read_once(timeout_s)
    return view.data


def _json_record(key: bytes | None, value: bytes | None) -> tuple[str, dict[str, Any] | None]:
    if key is None:
        raise ValueError("a record without a key")
    return key.decode(), None if value is None else orjson.loads(value)


async def topic_partitions(consumer: Any, topic: str) -> list[int]:
    """The topic's partitions (the consumer subscribes to nothing: its metadata is fetched for them)."""
    await consumer._client.force_metadata_update()
    return sorted(consumer.partitions_for_topic(topic) or ())
