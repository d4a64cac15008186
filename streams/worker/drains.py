"""The worker's drains and timers: each drain takes one input topic's fetched batches (the bulk
intake, :mod:`streams.kafka.bulk`), hands their records to the pipeline's handlers and makes their
outputs durable before it acknowledges them; each timer ticks the pipeline and writes the same way."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from faust.types import TP
from mode import Service

from streams.concepts.intake import RecordRef
from streams.contract import topics
from streams.kafka import consuming, faust_patches
from streams.kafka.bulk import Batch, Inbox
from streams.kafka.output import Sealed

if TYPE_CHECKING:
    from streams.worker.app import HcsApp

log = logging.getLogger(__name__)

SCAN_BATCH_MAX = 1000  # records handed to the pipeline at once (whole fetched batches, at least one)
# ... and bytes: 1,000 gateway batches are 100,000 scans, whose outputs a write would hold at once.
SCAN_BATCH_MAX_BYTES = 4 * 1024 * 1024
OVERLAP_MIN_S = 0.005  # a batch handled for at least this long is written while the next is handled
RECHECK_TICK_S = 5.0  # FEVER_UNRESOLVED fires within this long after a recheck window ends
WINDOW_TICK_S = 1.0  # compliance windows, silent checkpoints and district minutes close this often
FINDING_TICK_S = 10.0  # findings' deadlines and look-backs are met within this long (by stream time)
SWEEP_TICK_S = 60.0


class Drains(Service):
    """The input topics' drains, one task each; a drain that fails stops the worker (its batch
    unacknowledged: the restart reads it again), as Faust's agents did under a crashing supervisor."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.jobs: dict[str, Callable[[], Awaitable[None]]] = {}
        self.inboxes: dict[str, Inbox] = {}
        self.ticks: dict[str, Callable[[], Awaitable[None]]] = {}  # the timers' bodies, by name
        # What the ticks still wait for (views not loaded, tables recovering); empty: they run.
        self.waiting_for: Callable[[], list[str]] = list

    def tick_status(self) -> tuple[bool, dict[str, Any]]:
        """For ``/readyz``: whether the timers run, and what they wait for."""
        waiting = self.waiting_for()
        return not waiting, {"waiting_for": waiting}

    async def on_start(self) -> None:
        for name, job in self.jobs.items():
            self.add_future(self._run(name, job))

    async def _run(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 -- any failure stops the worker
            log.error("drain %s failed: %s", name, type(exc).__name__)
            await self.crash(exc)


def wire_agents(app: HcsApp, scans_topic: Any, entries_topic: Any, partials_topic: Any, observations_topic: Any,
                findings_topic: Any, recurrences_topic: Any, watch: Any) -> Drains:
    """The drains of the input topics, the timers, and the release of revoked partitions."""
    pipeline, owner, output, metrics = app.pipeline, app.stats_owner, app.output, app.metrics
    # The topics whose partition numbers are the state's (keyed by venue).
    venue_topics = {t.get_topic_name() for t in (scans_topic, entries_topic, observations_topic, findings_topic,
                                                 recurrences_topic)}
    drains = Drains()

    # mode types the handler as generic in an unbound sender type, which mypy cannot match.
    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    def release_partitions(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        """Another worker may now add to the revoked partitions' state: drop what is cached of it."""
        pipeline.release({tp.partition for tp in revoked if tp.topic in venue_topics})

    Handler = Callable[[bytes | None, RecordRef, float], None]

    def seal() -> Sealed:
        """State changes to their changelogs, and every pending record taken for one write."""
        pipeline.flush()
        owner.state.flush()
        return output.seal()

    async def persist() -> None:
        """State changes to their changelogs, then every pending record out and acknowledged."""
        await output.write(seal())

    async def drain(inbox: Inbox, spec: topics.TopicSpec, handle: Handler) -> None:
        """Hand each fetched batch's records to ``handle``; acknowledge them once the outputs and
        state are durable.

        Batches are written while the next ones are handled (the broker's round trip overlaps
        the work), in order, one write at a time (:class:`consuming.OrderedWriter`).
        """
        async def ack(batches: Sequence[Batch]) -> None:
            consumer = cast(faust_patches.Consumer, app.consumer)
            for batch in batches:
                consumer.ack_batch(batch)
            inbox.done(len(batches))

        writer: consuming.OrderedWriter[Sealed, Batch] = consuming.OrderedWriter(ack, seal, output.write)
        await app.views_loaded()  # nothing is judged before every view is loaded
        try:
            while True:
                batches = await inbox.take(SCAN_BATCH_MAX, SCAN_BATCH_MAX_BYTES)
                started = time.perf_counter()
                now = time.time()
                count = 0
                for batch in batches:
                    topic, partition = batch.tp
                    count += len(batch.records)
                    for record in batch.records:
                        timestamp = record.timestamp
                        ref = RecordRef(spec, topic, partition, record.offset, record.key,
                                        None if timestamp is None else timestamp / 1000)
                        try:
                            handle(record.value, ref, now)
                        except Exception as exc:
                            # A bug, not bad input (input errors are dead letters). The contract's
                            # DeadLetter reasons have no code for it, so it is logged (no payload:
                            # it holds person data) and counted for an alert, and the worker goes on.
                            log.exception("record %s[%d]@%d failed: %s", topic, partition, record.offset,
                                          type(exc).__name__)
                            metrics.processing_errors(spec.name).inc()
                writer.handled(batches, count)
                writer.check()  # an earlier batch could not be written: stop, unacknowledged
                if time.perf_counter() - started < OVERLAP_MIN_S or writer.backlog >= SCAN_BATCH_MAX:
                    # A quick batch is written before the next is taken, so that records gather
                    # meanwhile into a larger next batch, as writes cost per batch; a long one
                    # (gateway batches) overlaps its write with the next batch's handling.
                    await writer.finish()
        except BaseException:
            try:
                # A stop lets the batches in hand finish: written and acknowledged, or neither.
                await writer.finish()
            except BaseException:
                inbox.abandon()  # never acknowledged: read again after the restart
                raise
            raise

    def on_partial(value: bytes | None, ref: RecordRef, now: float) -> None:
        owner.on_record(value or b"", ref.partition)  # internal records: an empty one is a bug

    # Judge every scan of every record: decode -> dedup -> rules -> emit -> count. Add people
    # counted at checkpoints to their compliance windows. Merge every partition's part of each
    # district minute; emit when all have passed it.
    for name, topic, spec, handle in (
            ("judge_scans", scans_topic, topics.SCANS, pipeline.on_scan_record),
            ("count_entries", entries_topic, topics.ENTRIES, pipeline.on_entries_record),
            ("observe_isolation_points", observations_topic, topics.OBSERVATIONS, pipeline.on_observations_record),
            ("supervise_findings", findings_topic, topics.FINDINGS, pipeline.on_findings_record),
            ("follow_recurrences", recurrences_topic, topics.RECURRENCES, pipeline.on_recurrence_record),
            ("aggregate_district_stats", partials_topic, topics.PARTIALS, on_partial)):
        app.topics.add(topic)  # subscribed by Faust's consumer group, its records handed over whole
        inbox = drains.inboxes[name] = app.bulk_intake.add(topic.get_topic_name())
        drains.jobs[name] = functools.partial(drain, inbox, spec, handle)

    def close_all(now: float) -> None:
        pipeline.close_windows(now)
        pipeline.check_silent(now)
        pipeline.close_minutes(now)
        pipeline.close_isolation_days(now)
        pipeline.dead_letter_refused(now)

    # Each tick runs only once everything it reads is in: the replicated views (an isolation
    # day closed before the register was loaded would have no residents) and the tables.
    for name, interval, job in (("expire_rechecks", RECHECK_TICK_S, pipeline.expire_rechecks),
                                ("close_windows", WINDOW_TICK_S, close_all),
                                ("tick_findings", FINDING_TICK_S, pipeline.tick_findings),
                                ("sweep_state", SWEEP_TICK_S, pipeline.sweep)):
        async def tick(job: Callable[[float], object] = job) -> None:
            if drains.waiting_for():
                return
            job(time.time())
            await persist()

        drains.ticks[name] = tick
        app.timer(interval, name=name)(tick)

    @app.timer(WINDOW_TICK_S, name="watch_kafka")
    async def watch_kafka() -> None:
        watch.check()  # one log line when Kafka is back

    return drains
