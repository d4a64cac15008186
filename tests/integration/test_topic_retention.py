"""Retention of people's data: every topic the worker creates keeps its records as long as its
class allows (person-level 14 days, on-call 180, statistics 400, the register and policies for
ever, the tables' changelogs until a tombstone), and a topic that exists otherwise is named at
start in one line."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.contract import topics
from streams.kafka.cluster import ensure_topics
from streams.settings import Settings

pytestmark = pytest.mark.integration
DAY = 86_400_000


async def configs_of(bootstrap: str, names: list[str]) -> dict[str, dict[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    finally:
        await admin.close()
    return {resource[3]: {entry[0]: entry[1] for entry in resource[4]
                          if entry[0] in ("cleanup.policy", "retention.ms")}
            for response in responses for resource in response.resources}


def test_every_topic_is_created_with_the_retention_of_its_class(kafka_bootstrap: str, topic_prefix: str) -> None:
    settings = Settings(bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, app_id=f"{topic_prefix}worker")
    created = asyncio.run(ensure_topics(settings))
    got = asyncio.run(configs_of(kafka_bootstrap, created))

    def of(spec: topics.TopicSpec) -> dict[str, str]:
        return got[topics.topic_name(spec, topic_prefix)]

    for spec in (topics.SCANS, topics.DECISIONS, topics.DLQ, topics.EXPOSURES, topics.OBSERVATIONS, topics.CASES):
        assert of(spec) == {"cleanup.policy": "delete", "retention.ms": str(14 * DAY)}, spec.name
    assert of(topics.TRACES) == {"cleanup.policy": "compact,delete", "retention.ms": str(14 * DAY)}
    for spec in (topics.ALERTS, topics.ALERT_ACTIONS, topics.FINDINGS):
        assert of(spec) == {"cleanup.policy": "delete", "retention.ms": str(180 * DAY)}, spec.name
    for spec in (topics.INCIDENTS, topics.FINDING_STATUS):
        assert of(spec) == {"cleanup.policy": "compact,delete", "retention.ms": str(180 * DAY)}, spec.name
    for spec in (topics.DISTRICT_STATS, topics.ISOLATION_STATUS, topics.ENTRIES):
        assert of(spec) == {"cleanup.policy": "delete", "retention.ms": str(400 * DAY)}, spec.name
    for spec in (topics.MANAGEMENT, topics.POLICIES):  # the register and the policies: compacted, for ever
        assert of(spec) == {"cleanup.policy": "compact", "retention.ms": "-1"}, spec.name
    for table in ("state", "seen", "incidents", "district-stats"):  # state outlives any retention
        assert got[topics.changelog_topic_name(settings.app_id, table)] == {
            "cleanup.policy": "compact", "retention.ms": "-1"}, table
    print("\n".join(f"{name}: {config}" for name, config in sorted(got.items())))  # shown with -s


def test_an_existing_topic_kept_otherwise_is_named_at_start_in_one_line(
        kafka_bootstrap: str, topic_prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    scans = topics.topic_name(topics.SCANS, topic_prefix)

    async def made_by_hand() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:  # as a broker's defaults would make it: kept a week
            await admin.create_topics([NewTopic(scans, 8, 1, topic_configs={"retention.ms": str(7 * DAY)})])
        finally:
            await admin.close()

    asyncio.run(made_by_hand())
    settings = Settings(bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, app_id=f"{topic_prefix}worker")
    with caplog.at_level(logging.WARNING, logger="streams.kafka.cluster"):
        created = asyncio.run(ensure_topics(settings))
    assert scans not in created
    lines: list[Any] = [r.getMessage() for r in caplog.records if scans in r.getMessage()]
    assert len(lines) == 1, lines
    assert "retention.ms 7 days (hcs: 14 days)" in lines[0] and "\n" not in lines[0]
    assert f"--entity-name {scans} --add-config retention.ms={14 * DAY}" in lines[0]
    # Only the topic made otherwise: every other one was created as hcs makes it.
    assert not [r for r in caplog.records if "keeps its records otherwise" in r.getMessage() and scans not in
                r.getMessage()]
