"""The batched output keeps every topic it writes in the producer's metadata (a real broker).

aiokafka's client asks for every topic's metadata while no topic is registered with it (Faust
refreshes it that way after creating its changelog topics); once a topic created after that is
written, its metadata requests name only the topics registered with it. A topic written but not
registered then drops out of the metadata, and a batch queued for it waits for a leader forever
(the worker hung in benchmark runs). See ``streams/kafka/output.py``.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.kafka.output import BatchedOutput


async def _create(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()


def test_a_topic_written_stays_in_the_producers_metadata_after_a_new_topic_is(
        kafka_bootstrap: str, topic_prefix: str) -> None:
    early, late = f"{topic_prefix}early", f"{topic_prefix}late"

    async def scenario() -> None:
        await _create(kafka_bootstrap, early)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            await producer.client.force_metadata_update()  # as Faust after creating its topics:
            # with no topic registered, this fetches every topic's metadata, `early` among them
            await _create(kafka_bootstrap, late)  # unknown to the producer's metadata so far
            out = BatchedOutput(lambda: producer, {early: 1, late: 1})
            for topic in (early, late):
                out.add(topic, None, b"x")
                await asyncio.wait_for(out.flush(), 30)
            await producer.client.force_metadata_update()  # what aiokafka's sender does when it
            # finds a batch without a leader: without registration, this drops `early`
            assert producer.client.cluster.partitions_for_topic(early) == {0}
            assert producer.client.cluster.partitions_for_topic(late) == {0}
            out.add(early, None, b"y")
            await asyncio.wait_for(out.flush(), 30)
            await asyncio.wait_for(out.settle(), 30)
        finally:
            await producer.stop()

    asyncio.run(scenario())
