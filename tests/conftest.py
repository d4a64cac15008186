"""Session-wide fixtures: a real Kafka broker, per-test topic prefixes, real worker processes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.dev.localkafka import free_port
from tests.environment import local_broker


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap of a real broker: ``HCS_TEST_BOOTSTRAP`` or ``HCS_BOOTSTRAP`` if set (tests then
    only create topics under a unique prefix), else a local broker started for the session.

    In CI a broker that cannot start fails the run; elsewhere the tests that need it skip with
    the reason (e.g. Java missing), so unit tests still run on a bare laptop.
    """
    explicit = os.environ.get("HCS_TEST_BOOTSTRAP") or os.environ.get("HCS_BOOTSTRAP")
    if explicit:
        yield explicit
        return
    with local_broker(tmp_path_factory.mktemp("kafka")) as (_, bootstrap):
        yield bootstrap


@pytest.fixture
def topic_prefix() -> str:
    """A prefix that gives each test its own topics and consumer group."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def worker_env(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> dict[str, str]:
    """Environment for an ``hcs worker`` of this test (own topics, group, port and data dir)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HCS_")}
    env.update({
        "HCS_BOOTSTRAP": kafka_bootstrap,
        "HCS_APP_ID": f"{topic_prefix}worker",
        "HCS_TOPIC_PREFIX": topic_prefix,
        "HCS_WEB_PORT": str(free_port()),
        "HCS_BRIDGE_PORT": str(free_port()),
        "HCS_DATA_DIR": str(tmp_path / "data"),
    })
    return env
