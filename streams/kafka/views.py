"""Replicated views: a compacted topic read in full by every worker, and followed afterwards.

What every worker must know whatever partitions it owns (the register of managed people, the
policy in force) comes as a compacted topic: the latest record of each key is the current value
(a null value removes the key). A :class:`ReplicatedView` reads all of its partitions from the
start with a consumer of its own — no consumer group, so every worker gets every partition —
up to the end offsets it found at its start (``caught_up``: the view is loaded), then follows
new records for as long as the worker runs. Like Kafka Streams' GlobalKTable.

Why not Faust's ``GlobalTable``: it is the changelog of a table the app writes itself, recovered
through the consumer group's assignment (every partition as a standby of every worker), and
faust-streaming/faust#283 reports instances of a group seeing only part of it. The topics here
are written by other systems (registers, operators), read by every worker whole; a plain
consumer does that with nothing in between, and the two-worker test shows it
(``tests/integration/test_replicated_view.py``).

Records are read committed (a producer writing in transactions never shows an aborted write),
and applied to a :class:`streams.kafka.replica.Replica`, which decodes them and keeps the values.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from mode import Service

from streams.errors import ConfigError
from streams.kafka.replica import Decoder, Replica

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")


class ReplicatedView(Service, Generic[K, V]):
    """The current value of every key of ``topic``, on every worker."""

    def __init__(self, replica: Replica[K, V], client: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.replica = replica
        self.name = replica.name
        self.topic = replica.topic
        self.client = dict(client)
        self.data: dict[K, V] = replica.data
        self.caught_up = asyncio.Event()
        self._ends: dict[Any, int] | None = None  # the end offsets to reach before caught_up
        self._consumer: Any = None

    @classmethod
    def of(cls, name: str, topic: str, client: Mapping[str, Any], decode: Decoder[K, V]) -> ReplicatedView[K, V]:
        """A view of its own replica (a command reading a topic once, a test)."""
        return cls(Replica(name, topic, decode), client)

    @property
    def label(self) -> str:
        return f"{type(self).__name__}: {self.name}"

    async def on_start(self) -> None:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(self.topic, **self.client, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest", isolation_level="read_committed")
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()  # a refused or unreachable cluster: close what the start opened
            raise
        self._consumer = consumer

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    def status(self) -> tuple[bool, dict[str, Any]]:
        """For ``/readyz``: loaded or not, and what it holds."""
        return self.caught_up.is_set(), {"topic": self.topic, "keys": len(self.data),
                                         "records": self.replica.records, "skipped": self.replica.skipped}

    def apply(self, key: bytes | None, value: bytes | None, partition: int = 0, offset: int = -1) -> None:
        self.replica.apply(key, value, partition, offset)

    @Service.task
    async def _follow(self) -> None:
        consumer = self._consumer
        while not self.should_stop:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    self.apply(record.key, record.value, record.partition, record.offset)
            if not self.caught_up.is_set():
                await self._check_caught_up()

    async def _check_caught_up(self) -> None:
        consumer = self._consumer
        assigned = consumer.assignment()
        if not assigned:
            return  # the topic's metadata is not in yet
        if self._ends is None:
            self._ends = await consumer.end_offsets(list(assigned))
        for tp, end in self._ends.items():
            if await consumer.position(tp) < end:
                return
        self.caught_up.set()
        log.info("view %s loaded: %d keys from %d records of %s", self.name, len(self.data), self.replica.records,
                 self.topic)

    async def loaded(self) -> None:
        """Return once the view holds everything the topic held when the view started."""
        await self.caught_up.wait()

    async def read_once(self, timeout_s: float) -> None:
        """For a command rather than a worker: read the topic to the end it has now, then stop;
        :class:`ConfigError` if that takes longer than ``timeout_s``."""
        await self.start()
        try:
            async with asyncio.timeout(timeout_s):
                await self.loaded()
        except TimeoutError:
            raise ConfigError(f"could not read {self.topic} to its end within {timeout_s:.0f} s: does it exist "
                              "(a worker makes it)?") from None
        finally:
            await self.stop()
