"""The seek after a rebalance (streams.kafka.consuming): every stream partition, with the flow stopped."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from aiokafka import TopicPartition

from streams.kafka.patches.consumer import Consumer, ConsumerThread
from streams.metrics import Metrics
from streams.rules.policy import load_policy
from streams.settings import Settings
from streams.worker.app import CONSUMER_FETCH_BYTES, create_app

SCANS = [TopicPartition("hcs.scans.v1", p) for p in range(3)]
CHANGELOG = TopicPartition("hcs-worker-seen-changelog", 0)


class FakeKafkaConsumer:
    """The aiokafka consumer calls the seek makes."""

    def __init__(self, committed: dict[TopicPartition, int | None], beginning: int, end: int) -> None:
        self._committed = committed
        self._beginning, self._end = beginning, end
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.asked: list[TopicPartition] = []

    def assignment(self) -> set[TopicPartition]:
        return {*self._committed, CHANGELOG}

    async def committed(self, tp: TopicPartition) -> int | None:
        self.asked.append(tp)
        return self._committed[tp]

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._beginning for tp in tps}

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._end for tp in tps}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        assert len(self.asked) == len(self._committed), "seeks come after every offset is known"
        self.seeks.append((tp, offset))


def thread_over(kafka: FakeKafkaConsumer, reset: str = "earliest") -> ConsumerThread:
    thread = object.__new__(ConsumerThread)  # no Faust service machinery needed here
    thread._consumer = kafka
    thread.app = SimpleNamespace(tables=SimpleNamespace(changelog_topics={CHANGELOG.topic}),  # type: ignore[assignment]
                                 conf=SimpleNamespace(consumer_auto_offset_reset=reset))
    return thread


def test_every_stream_partition_is_sought_to_its_commit_or_where_the_reset_policy_starts_it() -> None:
    kafka = FakeKafkaConsumer({SCANS[0]: 120, SCANS[1]: None, SCANS[2]: 0}, beginning=7, end=900)
    committed = asyncio.run(thread_over(kafka)._seek_streams_to_committed())
    # aiokafka's own seek_to_committed skipped both None and 0: records fetched before were lost.
    assert sorted(kafka.seeks) == [(SCANS[0], 120), (SCANS[1], 7), (SCANS[2], 0)]
    assert committed == {SCANS[0]: 120, SCANS[1]: None, SCANS[2]: 0, CHANGELOG: None}
    assert CHANGELOG not in kafka.asked  # changelogs are positioned by table recovery


def test_with_latest_as_reset_policy_a_partition_without_commit_starts_at_its_end() -> None:
    kafka = FakeKafkaConsumer({SCANS[0]: None}, beginning=7, end=900)
    asyncio.run(thread_over(kafka, reset="latest")._seek_streams_to_committed())
    assert kafka.seeks == [(SCANS[0], 900)]


def test_the_workers_consumer_stops_the_flow_before_seeking_and_takes_the_new_read_offsets() -> None:
    app = create_app(Settings(app_id="seek-test"), load_policy(), Metrics())
    assert isinstance(app.consumer, Consumer)
    consumer: Any = app.consumer  # its methods are replaced below
    consumer.resume_flow()
    flow_during_seek: list[bool] = []
    standbys = [TopicPartition("seek-test-seen-changelog", p) for p in range(3)]
    sought: list[dict[TopicPartition, int]] = []

    async def seek_to_committed() -> dict[TopicPartition, int | None]:
        flow_during_seek.append(consumer.flow_active)
        return {SCANS[0]: 120, SCANS[1]: None}

    async def seek_wait(positions: dict[TopicPartition, int]) -> None:
        flow_during_seek.append(consumer.flow_active)
        sought.append(dict(positions))

    consumer.seek_to_committed, consumer.seek_wait = seek_to_committed, seek_wait
    consumer.assignment = lambda: {SCANS[0], SCANS[1], standbys[0], standbys[1]}
    # Table recovery took standby records up to offset 41 of one partition, none of another,
    # and keeps a standby the consumer no longer has (a rebalance began).
    recovery = cast(Any, app.tables).recovery
    recovery.standby_tps = set(standbys)
    recovery.standby_offsets.update({standbys[0]: 41, standbys[1]: -1, standbys[2]: 7})
    consumer._read_offset.update({SCANS[0]: 450, SCANS[1]: 450})  # read before the seek
    asyncio.run(consumer.perform_seek())
    assert flow_during_seek == [False, False]
    assert not consumer.flow_active  # resumed by the caller, after it cleared the stream queues
    assert consumer._read_offset[SCANS[0]] == 120 and consumer._read_offset[SCANS[1]] is None
    assert consumer._committed_offset[SCANS[0]] == 120
    # The standbys read again from the record after the last one recovery took: what was fetched
    # for them meanwhile waits in the changelog queue, which the caller's resume clears.
    assert sought == [{standbys[0]: 42, standbys[1]: 0}]


def test_every_drain_and_agent_stops_the_worker_when_it_fails_rather_than_skipping_its_batch() -> None:
    import asyncio

    from mode import CrashingSupervisor, Service

    from streams.ops.bridge import create_bridge_app

    worker = create_app(Settings(app_id="supervisor-test"), load_policy(), Metrics())
    bridge = create_bridge_app(Settings(app_id="supervisor-test"))
    assert sorted(worker.drains.jobs) == ["aggregate_district_stats", "combine_traces", "count_entries",
                                         "follow_alert_actions", "follow_alerts",
                                         "follow_recurrences", "judge_scans", "observe_isolation_points",
                                         "supervise_findings"]
    assert not worker.agents  # the worker's input topics are taken in bulk, not through agents
    assert [agent.supervisor_strategy for agent in bridge.agents.values()] == [CrashingSupervisor]
    assert isinstance(bridge.consumer, Consumer)

    async def scenario() -> tuple[bool, bool, BaseException | None]:
        parent = Service()  # stands in for the app: a crash goes up the service tree
        stopped = asyncio.Event()

        async def fails() -> None:
            raise ConnectionError("a batch could not be written")

        async def stops() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                stopped.set()

        worker.drains.jobs = {"fails": fails, "stops": stops}
        parent.add_dependency(worker.drains)  # as the app adds them before it starts its children
        await parent.start()
        await asyncio.sleep(0.05)
        crashed = parent._crashed.is_set()
        await worker.drains.stop()
        return crashed, stopped.is_set(), parent.crash_reason

    crashed, stopped, reason = asyncio.run(scenario())
    assert crashed and isinstance(reason, ConnectionError)
    assert stopped  # the other drain was cancelled by the stop, not crashed


def test_offsets_are_committed_only_once_the_apps_writes_are_acknowledged(monkeypatch: Any) -> None:
    import pytest
    from faust.transport.drivers import aiokafka as faust_aiokafka

    app = create_app(Settings(app_id="commit-test"), load_policy(), Metrics())
    calls: list[str] = []

    async def upstream(self: Any, offsets: Any, start_new_transaction: bool = True) -> bool:
        calls.append("commit")
        return True

    async def settled() -> None:
        calls.append("settle")

    async def failed() -> None:
        raise ConnectionError("a state write was not acknowledged")

    monkeypatch.setattr(faust_aiokafka.Consumer, "_commit_offsets", upstream)
    monkeypatch.setattr(app, "before_commit", settled)
    assert asyncio.run(cast(Any, app.consumer)._commit_offsets({SCANS[0]: 5}))
    assert calls == ["settle", "commit"]
    calls.clear()
    monkeypatch.setattr(app, "before_commit", failed)
    with pytest.raises(ConnectionError):
        asyncio.run(cast(Any, app.consumer)._commit_offsets({SCANS[0]: 5}))
    assert calls == []  # nothing committed


def test_the_workers_consumer_fetches_as_the_settings_say_not_with_faust_s_1_5_s_wait() -> None:
    from aiokafka import AIOKafkaConsumer

    async def build(settings: Settings) -> tuple[Any, Any]:
        app = create_app(settings, load_policy(), Metrics())
        thread: Any = cast(Any, app.consumer)._thread
        # The private names are aiokafka's own, read when the fetcher starts: checked on a plain consumer.
        plain = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9", fetch_max_wait_ms=123, fetch_min_bytes=45)
        return thread._create_worker_consumer(app.transport), plain

    worker, plain = asyncio.run(build(Settings(app_id="fetch-wait-test")))
    assert (plain._fetch_max_wait_ms, plain._fetch_min_bytes) == (123, 45)
    defaults = Settings()
    assert (worker._fetch_max_wait_ms, worker._fetch_min_bytes) == (defaults.fetch_max_wait_ms,
                                                                    defaults.fetch_min_bytes)
    assert defaults.fetch_max_wait_ms < 1500
    tuned, _ = asyncio.run(build(Settings.from_env({"HCS_FETCH_MIN_BYTES": "4096", "HCS_FETCH_MAX_WAIT_MS": "250"})))
    assert (tuned._fetch_max_wait_ms, tuned._fetch_min_bytes) == (250, 4096)
    assert worker._max_partition_fetch_bytes == CONSUMER_FETCH_BYTES  # the settings Faust passes are kept
