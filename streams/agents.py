"""The worker's agents and timers: each reads one topic (or ticks), hands the records to the
pipeline's handlers and makes their outputs durable before it acknowledges the records."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from faust.types import TP
from mode import CrashingSupervisor

from streams import consuming, topics
from streams.intake import RecordRef
from streams.output import Sealed

if TYPE_CHECKING:
    from streams.app import HcsApp

log = logging.getLogger(__name__)

SCAN_BATCH_MAX = 1000  # records handed to the pipeline at once
SCAN_BATCH_WITHIN_S = 0.005
OVERLAP_MIN_S = 0.005  # a batch handled for at least this long is written while the next is handled
RECHECK_TICK_S = 5.0  # FEVER_UNRESOLVED fires within this long after a recheck window ends
WINDOW_TICK_S = 1.0  # compliance windows, silent checkpoints and district minutes close this often
SWEEP_TICK_S = 60.0


def wire_agents(app: HcsApp, scans_topic: Any, entries_topic: Any, partials_topic: Any, watch: Any) -> None:
    """The agents of the three input topics, the timers, and the release of revoked partitions."""
    pipeline, owner, output, metrics = app.pipeline, app.stats_owner, app.output, app.metrics
    scans_name, entries_name = scans_topic.get_topic_name(), entries_topic.get_topic_name()

    # mode types the handler as generic in an unbound sender type, which mypy cannot match.
    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    def release_partitions(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        """Another worker may now add to the revoked partitions' state: drop what is cached of it."""
        pipeline.release({tp.partition for tp in revoked if tp.topic in (scans_name, entries_name)})

    Handler = Callable[[bytes | None, RecordRef, float], None]

    def seal() -> Sealed:
        """State changes to their changelogs, and every pending record taken for one write."""
        pipeline.flush()
        owner.state.flush()
        return output.seal()

    async def persist() -> None:
        """State changes to their changelogs, then every pending record out and acknowledged."""
        await output.write(seal())

    async def drain(stream: Any, spec: topics.TopicSpec, handle: Handler) -> None:
        """Hand each batch's records to ``handle``; ack them once the outputs and state are durable.

        Batches are written while the next ones are handled (the broker's round trip overlaps
        the work), in order, one write at a time (:class:`consuming.OrderedWriter`).
        """
        writer: consuming.OrderedWriter[Sealed] = consuming.OrderedWriter(stream, seal, output.write)
        await app.views_loaded()  # nothing is judged before every view is loaded
        try:
            async for events in consuming.batches(stream, SCAN_BATCH_MAX, SCAN_BATCH_WITHIN_S):
                started = time.perf_counter()
                now = time.time()
                for event in events:
                    msg = event.message
                    ref = RecordRef(spec, msg.topic, msg.partition, msg.offset, msg.key, msg.timestamp)
                    try:
                        handle(event.value, ref, now)
                    except Exception as exc:
                        # A bug, not bad input (input errors are dead letters). The contract's
                        # DeadLetter reasons have no code for it, so it is logged (no payload: it
                        # holds person data) and counted for an alert, and the worker goes on.
                        log.exception("record %s[%d]@%d failed: %s", msg.topic, msg.partition, msg.offset,
                                      type(exc).__name__)
                        metrics.processing_errors(spec.name).inc()
                writer.handled(events)
                writer.check()  # an earlier batch could not be written: stop, unacknowledged
                if time.perf_counter() - started < OVERLAP_MIN_S or writer.backlog >= SCAN_BATCH_MAX:
                    # A quick batch (single-scan records: Faust's per-record path is the cost)
                    # is written before the next is taken, so that records gather meanwhile into
                    # a larger next batch, as writes cost per batch; a long one (gateway
                    # batches) overlaps its write with the next batch's handling.
                    await writer.finish()
        finally:
            # A stop lets the batches in hand finish: written and acknowledged, or neither.
            await writer.finish()

    # A batch whose outputs could not be written (Kafka unreachable beyond the producer's
    # retries) stops the worker unacknowledged; its restart reads the batch again.
    @app.agent(scans_topic, name="judge_scans", supervisor_strategy=CrashingSupervisor)
    async def judge_scans(stream: Any) -> None:
        """Judge every scan of every record: decode -> dedup -> rules -> emit -> count."""
        await drain(stream, topics.SCANS, pipeline.on_scan_record)

    @app.agent(entries_topic, name="count_entries", supervisor_strategy=CrashingSupervisor)
    async def count_entries(stream: Any) -> None:
        """Add people counted at checkpoints to their compliance windows: decode -> dedup -> count."""
        await drain(stream, topics.ENTRIES, pipeline.on_entries_record)

    @app.agent(partials_topic, name="aggregate_district_stats", supervisor_strategy=CrashingSupervisor)
    async def aggregate_district_stats(stream: Any) -> None:
        """Merge every partition's part of each district minute; emit when all have passed it."""
        def on_partial(value: bytes | None, ref: RecordRef, now: float) -> None:
            owner.on_record(value or b"", ref.partition)  # internal records: an empty one is a bug

        await drain(stream, topics.PARTIALS, on_partial)

    @app.timer(RECHECK_TICK_S, name="expire_rechecks")
    async def expire_rechecks() -> None:
        pipeline.expire_rechecks(time.time())
        await persist()

    @app.timer(WINDOW_TICK_S, name="close_windows")
    async def close_windows() -> None:
        now = time.time()
        pipeline.close_windows(now)
        pipeline.check_silent(now)
        pipeline.close_minutes(now)
        await persist()

    @app.timer(WINDOW_TICK_S, name="watch_kafka")
    async def watch_kafka() -> None:
        watch.check()  # one log line when Kafka is back

    @app.timer(SWEEP_TICK_S, name="sweep_state")
    async def sweep_state() -> None:
        pipeline.sweep(time.time())
        await persist()
