"""A contract topic that exists with another partition count stops the worker at start, in one line."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.contract import topics
from tests.integration.kafka_io import name

pytestmark = pytest.mark.integration


def create(bootstrap: str, topic: str, partitions: int) -> None:
    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, partitions, 1)])
        finally:
            await admin.close()

    asyncio.run(run())


@pytest.mark.parametrize(("topic", "partitions"), [
    (lambda prefix, app_id: name(topics.SCANS, prefix), 3),
    (lambda prefix, app_id: topics.changelog_topic_name(app_id, "seen"), 1),
], ids=["scans", "a changelog"])
def test_a_topic_with_the_wrong_partition_count_fails_the_start_with_one_line(
        topic: object, partitions: int, worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str,
        tmp_path: Path) -> None:
    wrong = topic(topic_prefix, worker_env["HCS_APP_ID"])  # type: ignore[operator]
    create(kafka_bootstrap, wrong, partitions)
    done = subprocess.run([sys.executable, "-m", "streams", "worker", "-l", "info"], env=worker_env,
                          capture_output=True, text=True, timeout=60)
    needed = topics.SCANS.partitions
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"hcs: topic {wrong} has {partitions} partitions, hcs needs {needed}: per-venue state is kept by partition, "
        f"so its topics must have the declared counts (recreate the topic, or use another HCS_TOPIC_PREFIX / "
        f"HCS_APP_ID)"]
    assert "Traceback" not in done.stdout + done.stderr


def test_the_topics_a_worker_subscribes_to_exist_before_faust_starts(kafka_bootstrap: str, topic_prefix: str) -> None:
    """Faust's leader topic included: made by Faust while its consumer subscribed, a fresh start
    logged "Topic ...-__assignor-__leader not found in cluster metadata" at ERROR."""
    from streams.settings import Settings
    from tests.integration.kafka_io import create_topics

    app_id = f"{topic_prefix}worker"
    asyncio.run(ensure(Settings(bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, app_id=app_id)))
    counts = asyncio.run(partition_counts(kafka_bootstrap))
    assert counts.get(topics.leader_topic_name(app_id)) == 1
    assert counts.get(name(topics.SCANS, topic_prefix)) == topics.SCANS.partitions
    create_topics(kafka_bootstrap, topic_prefix)  # again: nothing to do, no error


async def ensure(settings: Any) -> None:
    from streams.kafka.cluster import ensure_topics

    await ensure_topics(settings)


async def partition_counts(bootstrap: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(await admin.list_topics())
        return {t["topic"]: len(t["partitions"]) for t in described}
    finally:
        await admin.close()
