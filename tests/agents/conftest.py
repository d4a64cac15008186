"""Faust test-context fixtures: the real app and agent, memory store, recorded outputs."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any
from unittest.mock import MagicMock

import orjson
import pytest

from streams import topics
from streams.app import HcsApp, create_app
from streams.metrics import Metrics
from streams.rules.policy import Policy, load_policy
from streams.settings import Settings


class RecordingSink:
    """Stands in for the producer: keeps every output, by contract topic name."""

    def __init__(self) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def send(self, spec: topics.TopicSpec, key: bytes | None, value: bytes) -> None:
        record = orjson.loads(value)
        record["_key"] = key.decode() if key is not None else None
        self.sent[spec.name].append(record)

    def send_many(self, spec: topics.TopicSpec, key: bytes | None, values: list[bytes]) -> None:
        for value in values:
            self.send(spec, key, value)

    def of(self, spec: topics.TopicSpec) -> list[dict[str, Any]]:
        return self.sent[spec.name]


class RecordingPartials:
    """Stands in for the internal partials topic: keeps partials and watermarks in order sent."""

    def __init__(self) -> None:
        self.partials: list[bytes] = []
        self.watermarks: list[bytes] = []

    def partial(self, district: str, value: bytes) -> None:
        self.partials.append(value)

    def watermark(self, value: bytes) -> None:
        self.watermarks.append(value)


def make_app(policy: Policy | None = None) -> tuple[HcsApp, RecordingSink, MagicMock]:
    app = create_app(Settings(app_id=f"agent-test-{uuid.uuid4().hex[:8]}"), policy or load_policy(), Metrics())
    app.finalize()
    app.conf.store = "memory://"  # type: ignore[assignment]  # Faust parses it into a URL
    app.flow_control.resume()
    sink = RecordingSink()
    app.pipeline.sink = sink
    app.stats_owner.sink = sink
    app.pipeline.partials = RecordingPartials()
    app.pipeline.is_active = lambda partition: partition == 0  # as if the group gave us partition 0
    changelog = MagicMock(name="send_changelog")  # the changelogs of every table, in one record
    def send(partition: int, records: list[tuple[str, Any]]) -> None:
        for key, value in records:
            changelog(partition, key, value)

    for state in (app.pipeline.state, app.pipeline.seen, app.stats_owner.state):
        state.send = send
    return app, sink, changelog


@pytest.fixture
def hcs_app() -> Iterator[tuple[HcsApp, RecordingSink, MagicMock]]:
    yield make_app()
