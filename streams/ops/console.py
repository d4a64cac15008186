"""What the operators' commands share (``hcs finding``, ``hcs findings``, ``hcs policy``,
``hcs replay``): writing their records to a topic, and printing their tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


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
