"""Batched output: a batch's records, grouped per topic partition, sent as Kafka batches.

Faust's ``send_soon`` costs a FutureMessage, sensor calls and a slot in a 100-message buffer
per record; profiled, that buffer throttled the worker. Here every record of a processing batch
is appended to one Kafka batch per (topic, partition) and the batch's events are acknowledged
only after the broker acknowledged those batches: at-least-once, with one round trip per batch.
Keyed records go where Kafka's default partitioner (murmur2) would put them.

Every topic written is registered with the producer's metadata client before its first batch:
aiokafka's client fetches every topic's metadata while no topic is registered with it (Faust
refreshes it that way after creating its topics), and ``send_batch`` registers a topic only when
it is missing from that metadata. The first topic that is missing (one created after that
refresh) turns the client's metadata requests into requests for the registered topics only, so
the unregistered ones drop out of it; a batch
already queued for one of them then has no leader, and aiokafka's sender asks for metadata in a
tight loop that never names its topic. The flush waited for that batch forever (the worker hung,
and the broker spent most of a core answering metadata requests; seen in benchmark runs).

State (changelog) records are sent only after the outputs of the same flush are acknowledged:
a dedup marker or an alert memo must never be durable without the decision or alert it
stands for, or a redelivered scan would be taken for a duplicate and its output lost. Their
acknowledgement is not waited for by the flush (the next batch's processing overlaps that
round trip) but by :meth:`settle`, which the consumer awaits before it commits offsets, and by
the next flush, so a failed state write stops the worker before anything it covers commits.

A state topic may have a reader of what it holds (:meth:`BatchedOutput.on_written`: the table's
on-disk store): its records are handed over, in the order they were sent, once Kafka holds them
for good (acknowledged; in exactly-once mode, their transaction committed), never before.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from aiokafka.partitioner import murmur2

Record = tuple[bytes | None, bytes | None]
# Told records of a partition that Kafka holds: (partition, records, offset of the last of them).
Written = Callable[[int, list[Record], int], None]


class Sealed(NamedTuple):
    """The records of one flush, taken at once (see :meth:`BatchedOutput.seal`)."""

    records: dict[tuple[str, int], list[Record]]
    previous: asyncio.Future[None] | None  # done once the seal taken before sent its state
    turn: asyncio.Future[None]  # done once this seal sent its state (or was abandoned)


def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partition of a key (the Java client's murmur2), as consumers expect."""
    return int((murmur2(key) & 0x7FFFFFFF) % partitions)


class BatchedOutput:
    """Collects records during a batch; :meth:`flush` sends them and waits for the acks."""

    def __init__(self, producer: Callable[[], Any], partitions: Mapping[str, int],
                 transactional: bool = False) -> None:
        self._producer = producer  # the started aiokafka producer (Faust's own, or a transactional one)
        # Each write one Kafka transaction: outputs and state become visible together or not at all.
        self._transactional = transactional
        self._partitions = partitions  # topic name -> partition count
        self._after: set[str] = set()  # state topics, sent once the outputs are acknowledged
        self._pending: dict[tuple[str, int], list[Record]] = {}
        self._in_flight: list[asyncio.Future[Any]] = []  # acks of batches sent, not yet awaited by all
        self._round_robin = itertools.count()
        # murmur2 is pure Python in aiokafka (~4% of the worker's CPU when profiled); keys (venues,
        # districts) repeat, so each key's partition is computed once.
        self._key_partitions: dict[tuple[str, bytes], int] = {}
        self._registered: tuple[object, set[str]] = (None, set())  # (client, topics registered with it)
        self._state_turn: asyncio.Future[None] | None = None  # done once the last flush sent its state
        self._readers: dict[str, Written] = {}  # state topic -> told what Kafka holds of it
        # Batches of those topics sent, in order, not told yet: (ack, topic, partition, records).
        self._unread: list[tuple[asyncio.Future[Any], str, int, list[Record]]] = []

    def send_after_outputs(self, topic: str) -> None:
        """Mark ``topic`` as state: its records of a flush go out after that flush's outputs."""
        self._after.add(topic)

    def on_written(self, topic: str, reader: Written) -> None:
        """Tell ``reader`` every record of state topic ``topic`` once Kafka holds it (see the module)."""
        self._readers[topic] = reader

    def add(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None) -> None:
        if partition is None:
            if key is None:
                partition = next(self._round_robin) % self._partitions[topic]
            else:
                partition = self._partition_of(topic, key)
        self._pending.setdefault((topic, partition), []).append((key, value))

    def _partition_of(self, topic: str, key: bytes) -> int:
        cached = self._key_partitions.get((topic, key))
        if cached is None:
            if len(self._key_partitions) > 100_000:
                self._key_partitions.clear()
            cached = self._key_partitions[(topic, key)] = partition_for(key, self._partitions[topic])
        return cached

    def add_many(self, topic: str, key: bytes | None, values: list[bytes]) -> None:
        """Several records of one key (keyed: one partition), in order."""
        if key is None:
            for value in values:
                self.add(topic, None, value)
            return
        self.add_to(topic, self._partition_of(topic, key), [(key, value) for value in values])

    def add_to(self, topic: str, partition: int, records: list[Record]) -> None:
        """Records (key, value) for one partition, in order."""
        self._pending.setdefault((topic, partition), []).extend(records)

    def __len__(self) -> int:
        return sum(len(records) for records in self._pending.values())

    async def flush(self) -> int:
        """Send every pending record: outputs first; once the broker acknowledged them (and
        everything sent before, by any flush), state. Returns when the state is sent."""
        return await self.write(self.seal())

    def seal(self) -> Sealed:
        """Take every pending record, for :meth:`write`. The state of seals is sent in the order
        they were taken, whatever order their outputs are acknowledged in: the changelog must
        end with each key's latest value. A seal must be written (or abandoned)."""
        pending, self._pending = self._pending, {}
        sealed = Sealed(pending, self._state_turn, asyncio.get_running_loop().create_future())
        self._state_turn = sealed.turn
        return sealed

    async def write(self, sealed: Sealed) -> int:
        """Send a seal's records, outputs first; its state once they are acknowledged.

        Transactional: every record of the seal in one transaction, once the transactions of
        the seals taken before it are committed, so outputs and state are durable together or
        not at all (read_committed readers never see an aborted one).
        """
        if self._transactional:
            return await self._write_transaction(sealed)
        try:
            outputs = {tp: records for tp, records in sealed.records.items() if tp[0] not in self._after}
            state = {tp: records for tp, records in sealed.records.items() if tp[0] in self._after}
            sent = await self._send(outputs)
            await self.settle()  # a failed send raises here: the batch's events are not acknowledged
            if sealed.previous is not None:
                await sealed.previous  # the state of the seal taken before is sent
            sent += await self._send(state)
            return sent
        finally:
            self.abandon(sealed)

    async def _write_transaction(self, sealed: Sealed) -> int:
        try:
            if sealed.previous is not None:
                await sealed.previous  # one transaction at a time, in the order the seals were taken
            if not sealed.records:
                return 0
            producer = self._producer()
            await producer.begin_transaction()
            try:
                sent = await self._send(sealed.records)
                await self.settle()
                await producer.commit_transaction()
            except BaseException:
                await self._abort(producer)
                raise
            self._tell()  # committed: every state record of it is for good
            return sent
        finally:
            self.abandon(sealed)

    def producer_failure(self) -> BaseException | None:
        """The error the transactional producer's sender died with, if it did: aiokafka then
        fails the producer's later calls on its own fatal state (an assertion), not on that error,
        so whoever sees a write fail asks here what the failure was."""
        if not self._transactional:
            return None
        task = getattr(getattr(self._producer(), "_sender", None), "sender_task", None)  # aiokafka 0.14's
        if task is None or not task.done() or task.cancelled():
            return None
        failure: BaseException | None = task.exception()
        return failure

    async def _abort(self, producer: Any) -> None:
        """Abort the open transaction if the producer still can (else the broker aborts it when
        the restarted worker's producer starts, or after the transaction timeout)."""
        self._in_flight, self._unread = [], []
        with contextlib.suppress(Exception):  # the error that made us abort is the one raised
            await asyncio.wait_for(asyncio.shield(producer.abort_transaction()), 5.0)

    def abandon(self, sealed: Sealed) -> None:
        """Give up a seal's turn (its records are not sent), so later seals' state can go out."""
        if not sealed.turn.done():
            sealed.turn.set_result(None)

    async def settle(self) -> None:
        """Wait until the broker acknowledged everything sent so far; raise if a send failed."""
        waiting = list(self._in_flight)
        await asyncio.gather(*waiting)
        self._in_flight = [f for f in self._in_flight if not f.done()]
        if not self._transactional:  # acknowledged is for good; a transaction's wait for its commit
            self._tell()

    def _tell(self) -> None:
        """Hand the records Kafka holds to their readers, in the order they were sent (up to the
        first not acknowledged, or failed: the worker stops on that failure)."""
        unread = self._unread
        told = 0
        for ack, topic, partition, records in unread:
            if not ack.done() or ack.cancelled() or ack.exception() is not None:
                break
            self._readers[topic](partition, records, ack.result().offset + len(records) - 1)
            told += 1
        del unread[:told]

    def _register(self, producer: Any, topic: str) -> None:
        """Keep ``topic`` in the producer's metadata requests (see the module's docstring)."""
        client, registered = self._registered
        if client is not producer.client:  # a new producer (Faust restarted it): a new client
            client, registered = self._registered = (producer.client, set())
        if topic not in registered:
            producer.client.add_topic(topic)  # no wait: send_batch waits for metadata if it must
            registered.add(topic)

    async def _send(self, groups: dict[tuple[str, int], list[Record]]) -> int:
        acks = self._in_flight
        sent = 0
        producer: Any = self._producer() if groups else None
        for (topic, partition), records in groups.items():
            self._register(producer, topic)
            if topic in self._readers:
                sent += await self._send_read(producer, topic, partition, records)
                continue
            batch = producer.create_batch()
            for key, value in records:
                if batch.append(key=key, value=value, timestamp=None) is None:  # full: send, start another
                    acks.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
                sent += 1
            acks.append(await producer.send_batch(batch, topic, partition=partition))
        return sent

    async def _send_read(self, producer: Any, topic: str, partition: int, records: list[Record]) -> int:
        """:meth:`_send` of a topic with a reader: each batch's ack kept with its records."""
        start, batch = 0, producer.create_batch()
        for i, (key, value) in enumerate(records):
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: send, start another
                await self._send_batch(producer, batch, topic, partition, records[start:i])
                start, batch = i, producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        await self._send_batch(producer, batch, topic, partition, records[start:])
        return len(records)

    async def _send_batch(self, producer: Any, batch: Any, topic: str, partition: int, records: list[Record]) -> None:
        ack = await producer.send_batch(batch, topic, partition=partition)
        self._in_flight.append(ack)
        self._unread.append((ack, topic, partition, records))
