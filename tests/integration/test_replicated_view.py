"""A replicated view on a real broker: every worker holds the whole compacted topic, is told when
it is loaded, follows changes and removals, and a restarted one loads it again."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.kafka.views import ReplicatedView
from tests.integration.kafka_io import produce

pytestmark = pytest.mark.integration


def decode(key: bytes | None, value: bytes | None) -> tuple[str, dict[str, Any] | None]:
    if key is None:
        raise ValueError("a view record needs a key")
    return key.decode(), None if value is None else orjson.loads(value)


async def create_compacted(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1, topic_configs={"cleanup.policy": "compact"})])
    finally:
        await admin.close()


async def send(bootstrap: str, topic: str, records: list[tuple[bytes, bytes | None]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


async def until(predicate: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.1)


def test_two_workers_each_load_the_whole_view_follow_it_and_a_restart_loads_it_again(
        kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    topic = f"{topic_prefix}register"
    asyncio.run(create_compacted(kafka_bootstrap, topic, 4))
    people = {f"person-{i:03d}": {"status": "isolating", "n": i} for i in range(200)}
    produce(kafka_bootstrap, topic, [(k.encode(), orjson.dumps(v)) for k, v in people.items()])
    produce(kafka_bootstrap, topic, [(b"person-999", b"not json")])  # skipped, counted (the broker refuses keyless)

    async def scenario() -> None:
        client = {"bootstrap_servers": kafka_bootstrap}
        first = ReplicatedView.of("register", topic, client, decode)
        second = ReplicatedView.of("register", topic, client, decode)
        for view in (first, second):
            await view.start()
        try:
            await asyncio.wait_for(asyncio.gather(first.loaded(), second.loaded()), 30)
            for view in (first, second):  # every partition, on each: no group splits them
                assert len(view.data) == 200 and view.replica.skipped == 1
                assert view.data["person-007"] == {"status": "isolating", "n": 7}
            assert first.status()[0] and first.status()[1]["keys"] == 200
            # Followed after loading: a change and a removal (a tombstone) reach both.
            await send(kafka_bootstrap, topic, [(b"person-007", orjson.dumps({"status": "monitoring", "n": 7})),
                                                (b"person-008", None)])
            await until(lambda: all(v.data.get("person-007", {}).get("status") == "monitoring"
                                    and "person-008" not in v.data for v in (first, second)))
        finally:
            await first.stop()
        # A restarted worker loads the topic again, changes and removals included.
        restarted = ReplicatedView.of("register", topic, client, decode)
        await restarted.start()
        try:
            assert not restarted.caught_up.is_set()
            await asyncio.wait_for(restarted.loaded(), 30)
            assert len(restarted.data) == 199 and restarted.data["person-007"]["status"] == "monitoring"
            assert "person-008" not in restarted.data
        finally:
            await restarted.stop()
            await second.stop()

    asyncio.run(scenario())


def test_a_view_of_an_empty_topic_is_loaded_at_once(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}policy"
    asyncio.run(create_compacted(kafka_bootstrap, topic, 1))

    async def scenario() -> None:
        view = ReplicatedView.of("policy", topic, {"bootstrap_servers": kafka_bootstrap}, decode)
        await view.start()
        try:
            await asyncio.wait_for(view.loaded(), 30)
            assert view.data == {}
        finally:
            await view.stop()

    asyncio.run(scenario())
