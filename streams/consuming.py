"""At-least-once consumption on Faust: batches whose events are acknowledged only once handled.

Two gaps in Faust 0.15 lose records, and both were caught by the crash test:

* ``Stream.take_events`` acknowledges a batch's events in a ``finally``: when the agent fails
  or is cancelled (a stop) mid-batch, events whose outputs were never written are committed.
  :func:`batches` yields the same batches but never acknowledges; :func:`complete` runs the
  batch's persist step and acknowledges only after it succeeded. A stop that arrives meanwhile
  lets the batch finish first, so a clean stop leaves no batch half-written.
* After a rebalance (a restart included) Faust seeks every partition to its committed offset
  while its fetcher keeps delivering records, then clears its stream queues. Records fetched
  around the seek were dropped as already read, and a partition without a committed offset (a
  new group, or a worker that died before its first commit) was not sought at all: either way
  records were never read again. :class:`Transport` stops the flow before seeking and seeks
  every stream partition, to where the reset policy starts it if it has no committed offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar, cast

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.tables import TableManager as FaustTableManager
from faust.tables.recovery import Recovery as FaustRecovery
from faust.transport.consumer import ensure_TP
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode import Service

from streams.readiness import RecoveryProgress, TableProgress, summary

SealedT = TypeVar("SealedT")

log = logging.getLogger(__name__)

# How long the broker may hold a fetch that finds no new records (Faust hard-codes 1,500 ms).
# aiokafka keeps one fetch in flight per broker, and partitions whose records are still
# buffered are left out of it: once those are handed over they wait for the fetch in flight,
# which, when it asked only for idle partitions (entries, partials), the broker holds for this
# long. At 1.5 s the worker sat idle ~30% of the time on gateway batches (and it likely caused
# the stalls of over a second once seen with single-scan records). An idle worker pays ~10 empty
# fetches a second for it (0.6% -> 1.4% of a core).
FETCH_MAX_WAIT_MS = 100


async def batches(stream: Any, max_: int, within: float) -> AsyncIterator[Sequence[Any]]:
    """Lists of up to ``max_`` events, each as soon as it is full or ``within`` seconds after its
    first event arrived.

    Nothing is acknowledged here: the caller acknowledges each batch with :func:`complete`.
    The stream is consumed passively by a processor, as ``Stream.take_events`` does; unlike it,
    an idle stream costs nothing (take_events polls every ``within`` seconds through mode's
    ``wait_for_stopped``, a handful of tasks per poll: 20% of an idle worker's loop, profiled).
    """
    loop = asyncio.get_running_loop()
    events: list[Any] = []
    ready = asyncio.Event()  # the batch is full, or its time is up
    taken = asyncio.Event()  # a full batch was handed over
    consuming: asyncio.Future[None] | None = None
    timer: asyncio.TimerHandle | None = None

    async def add(value: Any) -> Any:
        nonlocal timer
        while consuming is not None and not consuming.done():
            await consuming  # the caller is working on the previous batch
        event = stream.current_event
        if event is None:
            raise RuntimeError("a batched stream found no current event")
        events.append(event)
        if len(events) == 1:
            timer = loop.call_later(within, ready.set)
        if len(events) >= max_:
            ready.set()
            taken.clear()
            await taken.wait()  # never more than max_ per batch
        return value

    stream.enable_acks = False  # acks are the caller's, after the batch is handled
    stream.add_processor(add)
    stream._enable_passive(aiter(stream.channel))  # Faust's own mechanism behind take_events
    try:
        while not stream.should_stop:
            # One wait per batch (not per `within`), woken by a full or timed-out batch, or by
            # a stop, which hands over what was buffered.
            await stream.wait_for_stopped(ready)
            ready.clear()
            if timer is not None:
                timer.cancel()
                timer = None
            if not events:
                continue
            consuming = loop.create_future()
            batch = list(events)
            events.clear()
            try:
                yield batch
            finally:
                consuming.set_result(None)
                taken.set()
    finally:
        stream._processors.remove(add)
        if timer is not None:
            timer.cancel()


async def complete(stream: Any, events: Sequence[Any], persist: Callable[[], Awaitable[None]],
                   finish_on_stop: bool = True) -> None:
    """Run ``persist`` for a handled batch, then acknowledge its events.

    If ``persist`` fails nothing is acknowledged and the error propagates: the agent's crashing
    supervisor stops the worker, and a restarted worker reads the batch again. If the agent is
    cancelled (the worker stops) while ``persist`` runs, the batch is finished and acknowledged
    before the cancellation goes on; with ``finish_on_stop=False`` it is cancelled and left
    unacknowledged instead.
    """
    if not finish_on_stop:
        await persist()
        await _ack(stream, events)
        return
    task = asyncio.ensure_future(persist())
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task  # a stop: finish the batch in flight, then stop
        await _ack(stream, events)
        raise
    await _ack(stream, events)


async def _ack(stream: Any, events: Sequence[Any]) -> None:
    for event in events:
        await stream.ack(event)


class OrderedWriter(Generic[SealedT]):
    """Writes handled batches in order, one write at a time, while the next ones are handled.

    :meth:`handled` takes a batch whose records were handled; if no write is in flight it is
    sealed (``seal``: its outputs and state taken, synchronously) and written at once, else it
    goes into the next write, which starts when the one in flight is done. A slow round trip
    thus makes writes larger instead of the worker idle, and batches handled between two writes
    share one. Events are acknowledged once their write succeeded (:func:`complete`). A failed
    write stops all writing; :meth:`check` raises its error.
    """

    def __init__(self, stream: Any, seal: Callable[[], SealedT],
                 write: Callable[[SealedT], Awaitable[object]]) -> None:
        self._stream, self._seal, self._write = stream, seal, write
        self._events: list[Any] = []  # handled, not yet sealed
        self._writing: asyncio.Future[None] | None = None
        self._failed: BaseException | None = None

    @property
    def backlog(self) -> int:
        """Events handled and waiting for the next write."""
        return len(self._events)

    def handled(self, events: Sequence[Any]) -> None:
        self._events.extend(events)
        self._start()

    def check(self) -> None:
        """Raise the error of a failed write (nothing after it was written or acknowledged)."""
        if self._failed is not None:
            raise self._failed

    async def finish(self) -> None:
        """Until every handled batch is written and acknowledged (a stop lets them finish)."""
        while True:
            self.check()
            if self._writing is not None and not self._writing.done():
                await asyncio.wait([self._writing])
            elif self._events:
                self._start()
            else:
                return

    def _start(self) -> None:
        if self._failed is not None or not self._events:
            return
        if self._writing is not None and not self._writing.done():
            return  # the next write takes these events too
        events, self._events = self._events, []
        try:
            sealed = self._seal()
        except Exception as exc:  # noqa: BLE001 -- a bug; raised in the drain by check()
            self._failed = exc
            return

        async def persist() -> None:
            await self._write(sealed)

        self._writing = asyncio.ensure_future(complete(self._stream, events, persist))
        self._writing.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[None]) -> None:
        if task.cancelled():
            self._failed = asyncio.CancelledError("a write was cancelled")
        elif (error := task.exception()) is not None:
            self._failed = error
        else:
            self._start()


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, re-positioning every stream partition on a seek, whose
    consumer waits at most :data:`FETCH_MAX_WAIT_MS` for records that are not there."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes 1,500 ms with no setting to change it; read when the consumer starts.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        # Changelogs and partials are written in transactions (exactly-once mode): table
        # recovery must never restore the state of an aborted one. Faust reads committed only
        # with its own transactions; device topics (no transactions) read the same either way.
        consumer._isolation_level = "read_committed"
        return consumer

    async def on_thread_stop(self) -> None:
        """Stop the consumer, also while the cluster is unreachable.

        aiokafka's fetcher cancels its fetches on close and awaits them without catching their
        cancellation; a fetch cancelled while it slept before a retry (the cluster is down)
        re-raises it into ``consumer.stop()``, and from there out of this thread's shutdown,
        which then never tells the parent it stopped: a stop on SIGINT hung for mode's 60 s
        shutdown timeout of each thread, and the process did not exit while Kafka was down.
        A cancellation that is not of this task is a fetch's own: the stop goes on.
        """
        try:
            await super().on_thread_stop()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this stop itself was cancelled
            log.info("consumer stopped while Kafka was unreachable (a fetch in retry was cancelled)")
            consumer = self._consumer
            if consumer is not None:  # what stop() had left to do: close the client's connections
                with contextlib.suppress(Exception):
                    await consumer._client.close()

    async def seek_to_committed(self) -> Mapping[TP, int]:  # values may be None, as upstream
        return cast(Mapping[TP, int], await self.call_thread(self._seek_streams_to_committed))

    async def _seek_streams_to_committed(self) -> dict[Any, int | None]:
        """Every assigned stream partition to its committed offset, or where the reset policy
        starts it if it has none. Offsets are fetched first and the seeks made together after.
        Changelog partitions are positioned by table recovery, not here (and have no commits)."""
        consumer = self._ensure_consumer()
        changelogs = self.app.tables.changelog_topics
        assigned = consumer.assignment()
        streams = [tp for tp in assigned if tp.topic not in changelogs]
        committed: dict[Any, int | None] = {tp: None for tp in assigned}
        for tp in streams:
            committed[tp] = await consumer.committed(tp)
        unset = [tp for tp in streams if committed[tp] is None]
        if unset:
            latest = self.app.conf.consumer_auto_offset_reset == "latest"
            starts = await (consumer.end_offsets(unset) if latest else consumer.beginning_offsets(unset))
        for tp in streams:
            offset = committed[tp]
            consumer.seek(tp, starts[tp] if offset is None else offset)
        return committed


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with a seek that cannot lose the records fetched around it."""

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def perform_seek(self) -> None:
        """Faust seeks after every rebalance. Its own version lets the fetcher deliver records
        while partitions are sought one by one, compares them with read offsets updated only
        at the end (dropping re-fetched records as already read) and then clears the stream
        queues: records were lost. Here the flow stops first; every caller clears the queues
        and resumes the flow afterwards, so everything after the committed offsets is read again.
        """
        self.stop_flow()
        committed = await self.seek_to_committed()
        self._read_offset.update({ensure_TP(tp): offset for tp, offset in committed.items()})
        self._committed_offset.update({ensure_TP(tp): offset for tp, offset in committed.items() if offset})


    async def _commit_offsets(self, offsets: Mapping[TP, int], start_new_transaction: bool = True) -> bool:
        """Commit only once everything the app wrote for the acknowledged records is durable."""
        await cast(AtLeastOnceApp, self.app).before_commit()
        return await super()._commit_offsets(offsets, start_new_transaction)


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :class:`ConsumerThread`."""

    Consumer = Consumer


async def last_record_offsets(client: Mapping[str, Any], ends: Mapping[TP, int]) -> dict[TP, int]:
    """The offset of the last record a read_committed reader gets from each partition (-1: none),
    given each partition's end offset.

    Read back from the end in growing steps. It waits while a transaction is open at the end of
    a partition: its outcome decides what the last record is.
    """
    found: dict[TP, int] = {tp: -1 for tp, end in ends.items() if end <= 0}
    pending = {TopicPartition(tp.topic, tp.partition): (tp, end) for tp, end in ends.items() if end > 0}
    if not pending:
        return found
    consumer = AIOKafkaConsumer(**client, group_id=None, enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    try:
        span = 64
        while pending:
            consumer.assign(list(pending))
            for ktp, (_, end) in pending.items():
                consumer.seek(ktp, max(end - span, 0))
            last = dict.fromkeys(pending, -1)
            reading = set(pending)
            while reading:
                for ktp, records in (await consumer.getmany(*reading, timeout_ms=500)).items():
                    if records:
                        last[ktp] = records[-1].offset
                reading = {ktp for ktp in reading if await consumer.position(ktp) < pending[ktp][1]}
            for ktp in list(pending):
                tp, end = pending[ktp]
                if last[ktp] >= 0 or end - span <= 0:
                    found[tp] = last[ktp]
                    del pending[ktp]
            span *= 8
        return found
    finally:
        await consumer.stop()


class Recovery(FaustRecovery):
    """Faust's table recovery, done when the last record of each changelog partition is read.

    Faust takes a partition's end offset less one for the offset of its last record, and
    recovers until it has read that. A partition written in transactions ends with a commit
    marker, which takes an offset but is never delivered: recovery never ended (Faust itself
    notices it only in its own exactly-once mode, after 10 s of quiet). Here the last record's
    offset is read from the partition (:func:`last_record_offsets`).
    """

    progress_report_s = 5.0  # a progress line this often while recovering

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tracker = RecoveryProgress()
        self.recovered_once = False  # the tables of a first assignment are recovered: ready
        self._said_started = False

    def progress(self) -> dict[str, TableProgress]:
        """Records read of records to read in the current (or last) recovery, per table."""
        return self.tracker.of(self.active_offsets, self.active_highwaters,
                               lambda tp: self.tp_to_table[tp].name if tp in self.tp_to_table else tp.topic)

    def _set_recovery_started(self) -> None:
        super()._set_recovery_started()
        self.tracker.start(self.active_offsets)
        self._said_started = False
        self._say_started()

    def _say_started(self) -> None:
        progress = self.progress()
        if not self._said_started and any(p.total for p in progress.values()):
            self._said_started = True
            log.info("recovering tables from their changelogs: %s", summary(progress))

    def _set_recovery_ended(self) -> None:
        started, was_recovering = self._recovery_started_at, self.in_recovery
        super()._set_recovery_ended()
        ended = self._recovery_ended_at
        if was_recovering and self._said_started:
            took = f" in {ended - started:.1f} s" if started is not None and ended is not None else ""
            log.info("tables recovered%s: %s", took, summary(self.progress()))

    @property
    def ready(self) -> bool:
        """The tables of this worker's partitions are recovered and its streams resumed."""
        return self.completed.is_set() and not self.in_recovery

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        await super().on_recovery_completed(generation_id)
        self._maybe_first_ready()

    async def _resume_streams(self, generation_id: int = 0) -> None:  # nothing was there to recover
        await super()._resume_streams(generation_id)
        self._maybe_first_ready()

    def _maybe_first_ready(self) -> None:
        if self.ready and not self.recovered_once:
            self.recovered_once = True
            log.info("worker ready: tables recovered, judging records")

    @Service.task
    async def _report_progress(self) -> None:
        """Faust says how far recovery got only at debug level or with a time estimate it rarely
        has: one line every :attr:`progress_report_s` while recovering."""
        async for _ in self.itertimer(self.progress_report_s, name="Recovery.progress"):
            if self.in_recovery:
                if self._said_started:
                    log.info("recovering tables: %s", summary(self.progress()))
                else:
                    self._say_started()

    async def _build_highwaters(self, consumer: Any, tps: Any, destination: Any, title: str) -> None:
        await super()._build_highwaters(consumer, tps, destination, title)
        ends = {tp: destination[tp] + 1 for tp in tps if destination.get(tp) is not None}
        if ends:
            app = cast(AtLeastOnceApp, self.app)
            for tp, offset in (await last_record_offsets(app.kafka_client_kwargs(), ends)).items():
                destination[tp] = offset  # a Counter: update() would add


class TableManager(FaustTableManager):
    """Faust's table manager with :class:`Recovery`."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = Recovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return cast(Recovery, self._recovery)


class AtLeastOnceApp(faust.App):
    """A Faust app on :class:`Transport` and :class:`TableManager`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("TableManager", TableManager)
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)

    def kafka_client_kwargs(self) -> dict[str, Any]:
        """Connection arguments (bootstrap, TLS, SASL) of an aiokafka client of this app's
        cluster, for the recovery of its tables; an app with tables provides them."""
        raise NotImplementedError(f"{type(self).__name__} has tables but no Kafka client settings")

    async def before_commit(self) -> None:
        """Awaited before offsets are committed; raise to stop the commit (and the worker)."""
