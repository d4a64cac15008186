"""The worker's drains and ticks: each drain takes one input topic's fetched batches (the bulk
intake, :mod:`streams.kafka.bulk`), hands their records to its concept's handler and makes their
outputs durable before it acknowledges them; each tick runs the concepts' timers of one interval
and writes the same way."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from mode import Service

from streams.concepts.base import Handler, Input, RecordRef, Timer
from streams.contract import topics
from streams.kafka import consuming
from streams.kafka.bulk import Batch, Inbox
from streams.kafka.output import BatchedOutput, Sealed
from streams.kafka.patches.fences import exit_fenced
from streams.metrics import Metrics

log = logging.getLogger(__name__)

SCAN_BATCH_MAX = 1000  # records handed to a handler at once (whole fetched batches, at least one)
# ... and bytes: 1,000 gateway batches are 100,000 scans, whose outputs a write would hold at once.
SCAN_BATCH_MAX_BYTES = 4 * 1024 * 1024
OVERLAP_MIN_S = 0.005  # a batch handled for at least this long is written while the next is handled


class Drains(Service):
    """The input topics' drains, one task each, and the ticks; a drain that fails stops the worker
    (its batch unacknowledged: the restart reads it again), as Faust's agents did under a crashing
    supervisor."""

    def __init__(self, flush: Callable[[], None], output: BatchedOutput, metrics: Metrics,
                 ack: Callable[[Batch], None], loaded: Callable[[], Awaitable[None]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.flush = flush  # the state's changes to their changelogs
        self.output = output
        self.metrics = metrics
        self.ack_batch = ack  # a batch's offsets, acknowledged through Faust's bookkeeping
        self.loaded = loaded  # returns once every view is loaded: nothing is judged before
        self.jobs: dict[str, Callable[[], Awaitable[None]]] = {}
        self.inboxes: dict[str, Inbox] = {}
        self.ticks: dict[str, Callable[[], Awaitable[None]]] = {}  # the ticks' bodies, by name
        # What the ticks still wait for (views not loaded, tables recovering); empty: they run.
        self.waiting_for: Callable[[], list[str]] = list

    def add(self, inp: Input, inbox: Inbox) -> None:
        """A drain of ``inbox`` (an input topic's fetched batches) into ``inp``'s handler."""
        self.inboxes[inp.drain] = inbox
        self.jobs[inp.drain] = lambda: self.drain(inbox, inp.spec, inp.handle, inp.linger_s)

    def add_tick(self, name: str, timers: Sequence[Timer]) -> Callable[[], Awaitable[None]]:
        """The body of one tick: the ``timers`` in order, once everything they read is in (the
        views: an isolation day closed before the register was loaded would have no residents;
        and the tables), then one write."""
        async def tick() -> None:
            if self.waiting_for():
                return
            now = time.time()
            for timer in timers:
                timer.run(now)
            await self.persist()

        self.ticks[name] = tick
        return tick

    def tick_status(self) -> tuple[bool, dict[str, Any]]:
        """For ``/readyz``: whether the ticks run, and what they wait for."""
        waiting = self.waiting_for()
        return not waiting, {"waiting_for": waiting}

    def seal(self) -> Sealed:
        """State changes to their changelogs, and every pending record taken for one write."""
        self.flush()
        return self.output.seal()

    async def persist(self) -> None:
        """State changes to their changelogs, then every pending record out and acknowledged."""
        await self.output.write(self.seal())

    async def on_start(self) -> None:
        for name, job in self.jobs.items():
            self.add_future(self._run(name, job))

    async def _run(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 -- any failure stops the worker
            exit_fenced(exc, self.output.producer_failure())  # at once, in one line
            log.error("drain %s failed: %s", name, type(exc).__name__)
            await self.crash(exc)

    async def drain(self, inbox: Inbox, spec: topics.TopicSpec, handle: Handler, linger_s: float = 0.0) -> None:
        """Hand each fetched batch's records to ``handle``; acknowledge them once the outputs and
        state are durable.

        Batches are written while the next ones are handled (the broker's round trip overlaps
        the work), in order, one write at a time (:class:`consuming.OrderedWriter`). With
        ``linger_s`` a handled batch waits that long before its write: its outputs go out in
        another drain's write meanwhile, and its own then has nothing left to send.
        """
        async def ack(batches: Sequence[Batch]) -> None:
            for batch in batches:
                self.ack_batch(batch)
            inbox.done(len(batches))

        writer: consuming.OrderedWriter[Sealed, Batch] = consuming.OrderedWriter(ack, self.seal, self.output.write)
        await self.loaded()  # nothing is judged before every view is loaded
        try:
            while True:
                batches = await inbox.take(SCAN_BATCH_MAX, SCAN_BATCH_MAX_BYTES)
                started = time.perf_counter()
                count = self._handle(batches, spec, handle, time.time())
                if linger_s:
                    count += await self._linger(inbox, batches, spec, handle, started + linger_s)
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

    async def _linger(self, inbox: Inbox, batches: list[Batch], spec: topics.TopicSpec, handle: Handler,
                      until: float) -> int:
        """Until ``until`` (perf_counter), handle what else arrives, added to ``batches``; how many
        records. The inbox is emptied meanwhile: a full one would hold up the fetch loop, and with
        it every other topic's records."""
        count = 0
        while (left := until - time.perf_counter()) > 0:
            try:
                more = await asyncio.wait_for(inbox.take(SCAN_BATCH_MAX, SCAN_BATCH_MAX_BYTES), left)
            except TimeoutError:
                break
            count += self._handle(more, spec, handle, time.time())
            batches.extend(more)
        return count

    def _handle(self, batches: Sequence[Batch], spec: topics.TopicSpec, handle: Handler, now: float) -> int:
        """Every record of ``batches`` to ``handle``; how many."""
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
                    self.metrics.processing_errors(spec.name).inc()
        return count
