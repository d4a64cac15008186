"""Fixtures of the real app and its drains, run without a broker: memory store, recorded
outputs, records put into the drains' inboxes as the consumer's fetch loop puts them."""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import uuid
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import orjson
import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from streams.contract import topics
from streams.kafka.bulk import Batch
from streams.metrics import Metrics
from streams.rules.policy import Policy, load_policy
from streams.settings import MEMORY, Settings
from streams.worker.app import HcsApp, create_app


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
    # The visits are on disk whatever the store: in a directory of the test's own.
    settings = Settings(app_id=f"agent-test-{uuid.uuid4().hex[:8]}", table_store=MEMORY,
                        data_dir=Path(tempfile.mkdtemp(prefix="hcs-agent-")))
    app = create_app(settings, policy or load_policy(), Metrics())
    app.finalize()
    app.conf.store = "memory://"  # type: ignore[assignment]  # Faust parses it into a URL
    app.flow_control.resume()
    sink = RecordingSink()
    app.wiring.sink = sink
    app.wiring.stats.sink = sink
    app.wiring.partials = RecordingPartials()
    app.wiring.is_active = lambda partition: partition == 0  # as if the group gave us partition 0
    for view in app.views:  # an empty register and no published versions, loaded (tests apply records)
        view.caught_up.set()
    changelog = MagicMock(name="send_changelog")  # the changelogs of every table, in one record
    def send(partition: int, records: list[tuple[str, Any]]) -> None:
        for key, value in records:
            changelog(partition, key, value)

    assert app.wiring.incidents is not None
    app.wiring.owns_alerts = lambda partition: partition == 0
    for state in (app.wiring.state, app.wiring.seen, app.wiring.stats.state, app.wiring.incidents.state):
        state.send = send
    assert app.wiring.visits is not None
    app.wiring.visits.send = MagicMock(name="send_visits")  # its raw changelog records, apart
    return app, sink, changelog


@pytest.fixture
def hcs_app() -> Iterator[tuple[HcsApp, RecordingSink, MagicMock]]:
    yield make_app()


# A record for a drain: (key, value, partition, upload time in seconds or None).
Put = tuple[bytes | None, bytes | None, int, float | None]
_offsets = itertools.count()


def record(topic: str, key: bytes | None, value: bytes | None, partition: int,
           timestamp: float | None) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic, partition, next(_offsets), -1 if timestamp is None else round(timestamp * 1000),
                          0, key, value, None, len(key or b""), len(value or b""), ())


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.001)


async def running(app: HcsApp, scenario: Callable[[], Awaitable[None]]) -> None:
    """Run ``scenario`` while the app's drains run (their jobs, started and cancelled around it,
    as the worker's stop cancels them)."""
    jobs = [asyncio.ensure_future(job()) for job in app.drains.jobs.values()]
    try:
        await scenario()
    finally:
        for job in jobs:
            job.cancel()
        for done in await asyncio.gather(*jobs, return_exceptions=True):
            if not isinstance(done, asyncio.CancelledError):
                raise AssertionError(f"a drain failed: {done!r}")


async def feed(app: HcsApp, drain: str, puts: Iterable[Put], wait: bool = True) -> None:
    """Put each record into ``drain``'s inbox as a fetched batch of its own, in order; with
    ``wait``, until every one is handled, written and acknowledged. The drains must be running."""
    inbox = app.drains.inboxes[drain]
    for key, value, partition, timestamp in puts:
        await inbox.put(Batch(TP(inbox.topic, partition), [record(inbox.topic, key, value, partition, timestamp)]))
    if wait:
        await until(lambda: inbox.idle)


_loops: weakref.WeakKeyDictionary[HcsApp, asyncio.Runner] = weakref.WeakKeyDictionary()


def drive(app: HcsApp, drain: str, puts: Iterable[Put]) -> None:
    """:func:`feed` in a drains' run of its own, on the app's one event loop (a worker has one:
    its inboxes are bound to it)."""
    runner = _loops.get(app)
    if runner is None:
        runner = _loops[app] = asyncio.Runner()
        weakref.finalize(app, runner.close)
    runner.run(running(app, lambda: feed(app, drain, list(puts))))
