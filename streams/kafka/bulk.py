"""The bulk intake: records of the device-facing topics handed over as lists, per partition and fetch.

Faust hands every record to its agents one at a time: a message, an event, a channel queue, the
stream's processors, an acknowledgement each, and a task per record in the consumer's fetch loop
(``wait_first``). For single-scan records that machinery was 95% of a scan's cost. The topics
registered here skip it: the consumer's fetch loop (:meth:`streams.kafka.patches.consumer.Consumer.
_drain_messages`) puts each partition's new records of one fetch into the topic's
:class:`Inbox` as one :class:`Batch`, and the drain that judges them takes every batch waiting.
Faust keeps the group, its assignment, the tables and their changelogs, offsets and commits.

A batch taken is *in hand* until the drain has written its outputs and acknowledged its
offsets (:meth:`Inbox.done`); a rebalance and a stop wait until nothing is in hand
(:meth:`BulkIntake.settled`, awaited in the consumer's ``wait_empty``), as Faust waits for the
events its agents took. Batches still queued are dropped with the flow control's queues on a
rebalance: the partitions are sought back to their committed offsets and read again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from faust.types import TP
from mode.utils.queues import FlowControlEvent, FlowControlQueue

# Fetched batches queued per topic before the fetch loop waits (one fetch: a batch per partition).
INBOX_BATCHES = 16


@dataclass(slots=True)
class Batch:
    """The new records of one partition from one fetch, in offset order (aiokafka's records)."""

    tp: TP
    records: Sequence[Any]


class Inbox:
    """One topic's fetched batches, waiting for its drain."""

    def __init__(self, topic: str, flow_control: FlowControlEvent, maxsize: int = INBOX_BATCHES) -> None:
        self.topic = topic
        self._flow_control = flow_control
        # Cleared with every flow-controlled queue when a rebalance resumes the flow.
        self._queue: FlowControlQueue[Batch] = FlowControlQueue(maxsize, flow_control=flow_control,
                                                                 clear_on_resume=True)
        self._in_hand = 0
        self._settled = asyncio.Event()
        self._settled.set()

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing in hand."""
        return self._queue.empty() and not self._in_hand

    @property
    def in_hand(self) -> int:
        """Batches taken and not yet written and acknowledged."""
        return self._in_hand

    async def put(self, batch: Batch) -> None:
        """Queue a fetched batch; waits while the flow is suspended or the inbox is full."""
        await self._flow_control.acquire()
        await self._queue.put(batch)

    async def take(self, max_records: int, max_bytes: int = 1 << 62) -> list[Batch]:
        """Every batch waiting, at least one (waits for it), stopping once ``max_records``
        records or ``max_bytes`` of their values are in."""
        batches = [await self._queue.get()]
        count, size = len(batches[0].records), _size(batches[0])
        while count < max_records and size < max_bytes and not self._queue.empty():
            batch = self._queue.get_nowait()
            batches.append(batch)
            count += len(batch.records)
            size += _size(batch)
        self._in_hand += len(batches)
        self._settled.clear()
        return batches

    def done(self, batches: int) -> None:
        """``batches`` taken earlier are written and acknowledged."""
        self._in_hand = max(0, self._in_hand - batches)
        if not self._in_hand:
            self._settled.set()

    def abandon(self) -> None:
        """The drain failed: what it holds is never acknowledged (a restart reads it again)."""
        self._in_hand = 0
        self._settled.set()

    async def settled(self) -> None:
        await self._settled.wait()


def _size(batch: Batch) -> int:
    return sum(len(record.value or b"") for record in batch.records)


class BulkIntake:
    """The topics whose records are taken in bulk, each with its inbox."""

    def __init__(self, flow_control: FlowControlEvent) -> None:
        self._flow_control = flow_control
        self._inboxes: dict[str, Inbox] = {}

    def add(self, topic: str) -> Inbox:
        inbox = self._inboxes[topic] = Inbox(topic, self._flow_control)
        return inbox

    def inbox(self, topic: str) -> Inbox | None:
        return self._inboxes.get(topic)

    async def settled(self) -> None:
        """Until no inbox has a batch in hand."""
        for inbox in list(self._inboxes.values()):
            await inbox.settled()


def unread(records: Sequence[Any], read: int | None) -> tuple[Sequence[Any], list[tuple[int, int]]]:
    """The records at or past the partition's read offset, and the offset gaps among them.

    As Faust's own fetch loop judges them record by record (a record below the read offset was
    read before a seek; a gap, from transaction markers or compaction, is recorded so that
    commits can pass it): ``(from, to)`` as Faust's ``Consumer._add_gap`` takes them.
    """
    if not records:
        return records, []
    first, last = records[0].offset, records[-1].offset
    if (read is None or first >= read) and last - first == len(records) - 1 and (not read or first - read <= 1):
        return records, []  # the usual batch: contiguous and new
    fresh: list[Any] = []
    gaps: list[tuple[int, int]] = []
    for record in records:
        offset = record.offset
        if read is None or offset >= read:
            if read and offset - read > 1:
                gaps.append((read + 1, offset))
            fresh.append(record)
            read = offset
    return fresh, gaps
