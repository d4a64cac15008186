"""Batched output: Kafka's default partitioning, one batch per partition, acks awaited."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner

from streams.kafka.output import BatchedOutput, partition_for


def test_keys_go_where_the_java_client_would_put_them() -> None:
    for key in (b"venue-1", b"330106", "西湖-mall-7".encode()):
        assert partition_for(key, 8) == DefaultPartitioner()(key, list(range(8)), list(range(8)))


class FakeBatch:
    def __init__(self, capacity: int) -> None:
        self.records: list[tuple[Any, Any]] = []
        self.capacity = capacity

    def append(self, key: Any, value: Any, timestamp: Any) -> object | None:
        if len(self.records) >= self.capacity:
            return None
        self.records.append((key, value))
        return object()


class FakeClient:
    def __init__(self) -> None:
        self.added: list[str] = []

    def add_topic(self, topic: str) -> None:
        self.added.append(topic)


class FakeProducer:
    def __init__(self, capacity: int = 1000) -> None:
        self.sent: list[tuple[str, int, list[tuple[Any, Any]]]] = []
        self.capacity = capacity
        self.client = FakeClient()

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.capacity)

    async def send_batch(self, batch: FakeBatch, topic: str, partition: int) -> asyncio.Future[None]:
        self.sent.append((topic, partition, batch.records))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def test_a_flush_sends_one_batch_per_topic_partition_in_order() -> None:
    producer = FakeProducer()
    out = BatchedOutput(lambda: producer, {"decisions": 8, "changelog": 8})
    for i in range(5):
        out.add("decisions", b"venue-1", b"d%d" % i)
    out.add("changelog", b'"e|1"', None, partition=3)
    assert len(out) == 6
    assert asyncio.run(out.flush()) == 6
    assert producer.sent == [("decisions", partition_for(b"venue-1", 8), [(b"venue-1", b"d%d" % i) for i in range(5)]),
                             ("changelog", 3, [(b'"e|1"', None)])]
    assert asyncio.run(out.flush()) == 0


def test_records_added_together_keep_their_order_after_those_added_one_by_one() -> None:
    producer = FakeProducer()
    out = BatchedOutput(lambda: producer, {"decisions": 8})
    out.add("decisions", b"venue-1", b"d0")
    out.add_many("decisions", b"venue-1", [b"d1", b"d2"])
    out.add_many("decisions", None, [b"r0", b"r1"])  # unkeyed: spread over the partitions
    asyncio.run(out.flush())
    keyed = [records for _, partition, records in producer.sent if partition == partition_for(b"venue-1", 8)]
    assert [(b"venue-1", b"d%d" % i) for i in range(3)] == [r for r in keyed[0] if r[0] is not None]
    assert sorted(v for _, _, records in producer.sent for k, v in records if k is None) == [b"r0", b"r1"]


def test_each_topic_is_registered_with_the_producers_metadata_once_per_producer() -> None:
    producers = [FakeProducer()]
    out = BatchedOutput(lambda: producers[-1], {"decisions": 8, "changelog": 8})
    for _ in range(3):
        out.add("decisions", b"venue-1", b"d")
        out.add("changelog", b'"e|1"', None, partition=3)
        asyncio.run(out.flush())
    assert producers[0].client.added == ["decisions", "changelog"]
    producers.append(FakeProducer())  # a restarted producer has a new metadata client
    out.add("decisions", b"venue-1", b"d")
    asyncio.run(out.flush())
    assert producers[1].client.added == ["decisions"]


def test_a_full_batch_is_sent_and_another_started() -> None:
    producer = FakeProducer(capacity=2)
    out = BatchedOutput(lambda: producer, {"t": 1})
    for i in range(5):
        out.add("t", None, b"%d" % i)
    asyncio.run(out.flush())
    assert [len(records) for _, _, records in producer.sent] == [2, 2, 1]


def test_state_records_go_out_only_after_the_outputs_are_acknowledged() -> None:
    order: list[str] = []

    class Tracing(FakeProducer):
        async def send_batch(self, batch: FakeBatch, topic: str, partition: int) -> asyncio.Future[None]:
            order.append(f"send {topic}")
            ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            def acked() -> None:
                order.append(f"ack {topic}")
                ack.set_result(None)

            asyncio.get_running_loop().call_later(0.01, acked)
            return ack

    out = BatchedOutput(lambda: Tracing(), {"decisions": 1, "seen-changelog": 1})
    out.send_after_outputs("seen-changelog")

    async def scenario() -> None:
        out.add("seen-changelog", b'"e|1"', b"[0, 1.0]", partition=0)  # added first, sent last
        out.add("decisions", b"venue-1", b"{}")
        await out.flush()  # returns once the state is sent: its round trip overlaps the next batch
        assert order == ["send decisions", "ack decisions", "send seen-changelog"]
        await out.settle()  # what the consumer awaits before it commits offsets
        assert order[-1] == "ack seen-changelog"

    asyncio.run(scenario())


def test_concurrent_flushes_send_their_state_in_the_order_they_were_taken() -> None:
    sent: list[tuple[str, Any]] = []

    class SlowFirst(FakeProducer):
        """The first batch is slow to be taken (as when aiokafka waits for metadata or room)."""

        calls = 0

        async def send_batch(self, batch: FakeBatch, topic: str, partition: int) -> asyncio.Future[None]:
            SlowFirst.calls += 1
            if SlowFirst.calls == 1:
                await asyncio.sleep(0.05)
            sent.append((topic, batch.records[0][1]))
            ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            ack.set_result(None)
            return ack

    out = BatchedOutput(lambda: SlowFirst(), {"decisions": 1, "state-changelog": 1})
    out.send_after_outputs("state-changelog")

    async def scenario() -> None:
        out.add("decisions", b"v", b"d1")
        out.add("state-changelog", b'"w|1"', b"old", partition=0)
        first = asyncio.ensure_future(out.flush())  # an agent's batch, its output slow to ack
        await asyncio.sleep(0)
        out.add("decisions", b"v", b"d2")
        out.add("state-changelog", b'"w|1"', b"new", partition=0)  # the same key, changed later
        await asyncio.gather(first, out.flush())  # a timer's flush meanwhile
        await out.settle()

    asyncio.run(scenario())
    assert [value for topic, value in sent if topic == "state-changelog"] == [b"old", b"new"]


def test_a_failed_state_write_surfaces_at_the_next_flush_or_commit() -> None:
    class Failing(FakeProducer):
        async def send_batch(self, batch: FakeBatch, topic: str, partition: int) -> asyncio.Future[None]:
            ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if topic == "state-changelog":
                ack.set_exception(ConnectionError("not written"))
            else:
                ack.set_result(None)
            return ack

    out = BatchedOutput(lambda: Failing(), {"decisions": 1, "state-changelog": 1})
    out.send_after_outputs("state-changelog")

    async def scenario() -> None:
        out.add("state-changelog", b'"w|1"', b"[0, {}]", partition=0)
        await out.flush()
        with pytest.raises(ConnectionError):
            await out.settle()

    asyncio.run(scenario())


class Meta:
    """The part of aiokafka's RecordMetadata read here: a batch's base offset."""

    def __init__(self, offset: int) -> None:
        self.offset = offset


class Offsets(FakeProducer):
    """Acks each batch with its base offset, per partition; acks wait for :meth:`ack_all`."""

    def __init__(self, capacity: int = 1000) -> None:
        super().__init__(capacity)
        self.ends: dict[tuple[str, int], int] = {}
        self.unacked: list[tuple[asyncio.Future[Meta], Meta]] = []
        self.transactions: list[str] = []

    async def send_batch(self, batch: FakeBatch, topic: str, partition: int) -> asyncio.Future[Meta]:  # type: ignore[override]
        self.sent.append((topic, partition, batch.records))
        base = self.ends.get((topic, partition), 0)
        self.ends[(topic, partition)] = base + len(batch.records)
        ack: asyncio.Future[Meta] = asyncio.get_running_loop().create_future()
        self.unacked.append((ack, Meta(base)))
        return ack

    def ack_all(self) -> None:
        for ack, meta in self.unacked:
            ack.set_result(meta)
        self.unacked = []

    async def begin_transaction(self) -> None:
        self.transactions.append("begin")

    async def commit_transaction(self) -> None:
        self.transactions.append("commit")

    async def abort_transaction(self) -> None:
        self.transactions.append("abort")


def test_a_state_topics_reader_gets_its_records_once_acknowledged_in_order_with_their_last_offset() -> None:
    producer = Offsets(capacity=2)
    out = BatchedOutput(lambda: producer, {"decisions": 1, "changelog": 2})
    out.send_after_outputs("changelog")
    read: list[tuple[int, list[Any], int]] = []
    out.on_written("changelog", lambda partition, records, last: read.append((partition, records, last)))

    async def scenario() -> None:
        out.add("decisions", b"v", b"d")
        out.add_to("changelog", 1, [(b'"a"', b"1"), (b'"b"', b"2"), (b'"a"', None)])  # two batches
        flush = asyncio.ensure_future(out.flush())
        await asyncio.sleep(0)
        assert read == []  # the outputs are not acknowledged: the state is not even sent
        producer.ack_all()
        await flush
        assert read == []  # sent, not acknowledged
        producer.ack_all()
        await out.settle()
        assert read == [(1, [(b'"a"', b"1"), (b'"b"', b"2")], 1), (1, [(b'"a"', None)], 2)]
        out.add_to("changelog", 1, [(b'"c"', b"3")])
        await out.flush()
        producer.ack_all()
        await out.settle()
        assert read[-1] == (1, [(b'"c"', b"3")], 3)

    asyncio.run(scenario())


def test_in_a_transaction_the_reader_gets_the_state_only_once_it_is_committed_and_never_if_aborted() -> None:
    producer = Offsets()
    out = BatchedOutput(lambda: producer, {"decisions": 1, "changelog": 1}, transactional=True)
    out.send_after_outputs("changelog")
    read: list[tuple[int, list[Any], int]] = []
    out.on_written("changelog", lambda partition, records, last: read.append((partition, records, last)))
    committing = asyncio.Event()

    async def commit_after_check() -> None:
        assert read == []  # acknowledged, not yet committed
        producer.transactions.append("commit")
        committing.set()

    async def fail_commit() -> None:
        raise ConnectionError("the coordinator is gone")

    async def scenario() -> None:
        producer.commit_transaction = commit_after_check  # type: ignore[method-assign]
        out.add("decisions", b"v", b"d")
        out.add_to("changelog", 0, [(b'"a"', b"1")])
        write = asyncio.ensure_future(out.flush())
        await asyncio.sleep(0.01)
        producer.ack_all()
        await write
        assert committing.is_set() and read == [(0, [(b'"a"', b"1")], 0)]
        producer.commit_transaction = fail_commit  # type: ignore[method-assign]
        out.add_to("changelog", 0, [(b'"b"', b"2")])
        write = asyncio.ensure_future(out.flush())
        await asyncio.sleep(0.01)
        producer.ack_all()
        with pytest.raises(ConnectionError):
            await write
        assert read == [(0, [(b'"a"', b"1")], 0)] and producer.transactions[-1] == "abort"

    asyncio.run(scenario())


def test_a_failed_state_write_is_never_handed_to_the_reader() -> None:
    read: list[Any] = []

    class Failing(FakeProducer):
        async def send_batch(self, batch: FakeBatch, topic: str, partition: int) -> asyncio.Future[None]:
            ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            ack.set_exception(ConnectionError("not written"))
            return ack

    out = BatchedOutput(lambda: Failing(), {"changelog": 1})
    out.send_after_outputs("changelog")
    out.on_written("changelog", lambda *args: read.append(args))

    async def scenario() -> None:
        out.add_to("changelog", 0, [(b'"a"', b"1")])
        await out.flush()
        with pytest.raises(ConnectionError):
            await out.settle()
        with pytest.raises(ConnectionError):
            await out.settle()

    asyncio.run(scenario())
    assert read == []
