"""Patches of Faust 0.15 and aiokafka 0.14, each a subclass, each for a fault our tests caught.

* **The seek after a rebalance lost records** (:class:`Consumer`, :class:`ConsumerThread`).
  Faust seeks every partition to its committed offset while its fetcher keeps delivering
  records, compares them with read offsets updated only at the end (dropping re-fetched records
  as already read), then clears its stream queues; a partition without a committed offset (a
  new group, a worker that died before its first commit) was not sought at all. Here the flow
  stops first and every stream partition is sought, to where the reset policy starts it when it
  has no commit. Related upstream: faust-streaming/faust#596 (gaps in acked offsets after
  recovery).
* **Offsets were committed before the outputs were durable** (:meth:`Consumer._commit_offsets`):
  the app's ``before_commit`` runs first.
* **Idle fetches held 1.5 s**: Faust hard-codes ``fetch_max_wait_ms`` (and has no setting for
  ``fetch_min_bytes``); the app's :attr:`AtLeastOnceApp.fetch_min_bytes` and
  :attr:`AtLeastOnceApp.fetch_max_wait_ms` are used instead.
* **Changelogs written in transactions never finished recovering** (:class:`Recovery`). Faust
  recovers until the end offset less one, which on a transactional changelog is a commit
  marker that is never delivered (upstream: faust-streaming/faust#47, a worker hanging in
  recovery with exactly_once, and #155, "off by one error fetching changelog"). The last
  record's offset is read from the partition instead (:func:`last_record_offsets`). It also
  logs recovery progress and tells :mod:`streams.kafka.readiness` when the tables are recovered.
* **A stop hung while Kafka was unreachable** (:meth:`ConsumerThread.on_thread_stop`):
  aiokafka's ``Fetcher.close()`` awaits its cancelled fetches without catching the cancellation
  a fetch sleeping before its retry re-raises (compare aio-libs/aiokafka#647, a consumer stop
  raising ``CancelledError``); mode then never learnt that the consumer thread stopped and
  waited its 60 s shutdown timeout per thread.

:class:`AtLeastOnceApp` is a Faust app on these (its transport and table manager).
:class:`QuietWorker` is Faust's worker without its terminal spinner (10% of the CPU).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any, cast

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.tables import TableManager as FaustTableManager
from faust.tables.recovery import Recovery as FaustRecovery
from faust.transport.consumer import CONSUMER_FETCHING, ensure_TP
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import ack_lock
from mode import Service
from mode.utils.futures import notify

from streams.kafka.bulk import Batch, BulkIntake, unread
from streams.kafka.readiness import RecoveryProgress, TableProgress, summary

log = logging.getLogger(__name__)

class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, re-positioning every stream partition on a seek, whose
    fetches gather and wait as the app says (:attr:`AtLeastOnceApp.fetch_max_wait_ms`)."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes 1,500 ms and fetch_min_bytes=1 with no setting to change them; aiokafka
        # reads both when the consumer starts.
        app = cast(AtLeastOnceApp, self.app)
        consumer._fetch_max_wait_ms = app.fetch_max_wait_ms
        consumer._fetch_min_bytes = app.fetch_min_bytes
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
    """Faust's aiokafka consumer with a seek that cannot lose the records fetched around it, and
    a fetch loop that hands the records of the app's bulk topics over whole (:mod:`streams.kafka.bulk`).
    """

    @property
    def bulk(self) -> BulkIntake:
        return cast(AtLeastOnceApp, self.app).bulk_intake

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover -- the fetcher's loop
        """Faust's fetch loop, with each partition's new records of a bulk topic put into its
        inbox as one batch; the records of other topics (the changelogs in recovery) go to
        Faust's conductor one by one, as upstream.

        What upstream does around each record is kept, per batch: records below the read offset
        are dropped (re-fetched around a seek), offset gaps are recorded for the commits, a
        hand-over waits while the flow is suspended and gives up when it is stopped (a rebalance),
        and a fetch that straddles a new generation is not handed over past it.
        """
        callback, to_message = self.callback, self._to_message
        consumer_stopped = cast(Service, self)._stopped.is_set
        fetcher_stopped = cast(Service, fetcher)._stopped.is_set
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        inbox_of = self.bulk.inbox
        track_end = self.app.monitor.track_tp_end_offset
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                records, active = await self._wait_next_records(1.0)
                await self.sleep(0)
                generation = self.app.consumer_generation_id
                for ktp, fetched in (records or {}).items():
                    if self.should_stop or not self.flow_active or self.app.consumer_generation_id != generation:
                        break
                    tp = ensure_TP(ktp)
                    if active is not None and tp not in active and tp not in self._buffered_partitions:
                        continue
                    track_end(tp, self.highwater(tp))
                    fresh, gaps = unread(fetched, read_offset[tp])
                    if not fresh:
                        continue
                    if gaps and acks_enabled_for(tp.topic):
                        for start, end in gaps:
                            await self._add_gap(tp, start, end)
                    if self._commit_every is not None and self._n_acked >= self._commit_every:
                        self._n_acked = 0
                        await self.commit()
                    inbox = inbox_of(tp.topic)
                    if inbox is not None:
                        await self.wait_first(inbox.put(Batch(tp, fresh)), self.suspend_flow.wait())
                        read_offset[tp] = fresh[-1].offset
                        continue
                    for i, record in enumerate(fresh):
                        if i and not i % 100:
                            await asyncio.sleep(0)
                        await self.wait_first(callback(to_message(tp, record)), self.suspend_flow.wait())
                        read_offset[tp] = record.offset
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                log.info("Consumer shutting down for user cancel.")
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    def ack_batch(self, batch: Batch) -> None:
        """Acknowledge every record of a bulk batch (as :meth:`ack` does a message's offset)."""
        tp = batch.tp
        if not self.app.topics.acks_enabled_for(tp.topic):
            return
        with ack_lock:
            committed = self._committed_offset[tp]
            index = self._acked_index[tp]
            floor = -1 if committed is None else committed
            new = [offset for offset in (record.offset for record in batch.records)
                   if offset >= floor and offset not in index]
            index.update(new)
            self._acked[tp].extend(new)
            self._n_acked += len(new)
        notify(self._waiting_for_ack)

    async def wait_empty(self) -> None:
        """Faust's wait for the events its streams took, after the bulk batches in hand are
        written and acknowledged (a rebalance, a stop)."""
        await self.wait(self.bulk.settled())
        await super().wait_empty()

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
        cast(AtLeastOnceApp, self.app).on_tables_recovered()
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

    # How long the broker may hold a fetch that finds fewer new bytes than fetch_min_bytes
    # (Faust hard-codes 1,500 ms). aiokafka keeps one fetch in flight per broker, and partitions
    # whose records are still buffered are left out of it: once those are handed over they wait
    # for the fetch in flight, which, when it asked only for idle partitions, the broker holds
    # for this long. At 1.5 s the worker sat idle ~30% of the time on gateway batches (and it
    # likely caused the stalls of over a second once seen with single-scan records).
    fetch_max_wait_ms: int = 100
    fetch_min_bytes: int = 1  # aiokafka's default; the worker takes HCS_FETCH_MIN_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("TableManager", TableManager)
        super().__init__(*args, **kwargs)
        # Topics whose records the consumer hands over whole, each to its drain.
        self.bulk_intake = BulkIntake(self.flow_control)

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)

    def kafka_client_kwargs(self) -> dict[str, Any]:
        """Connection arguments (bootstrap, TLS, SASL) of an aiokafka client of this app's
        cluster, for the recovery of its tables; an app with tables provides them."""
        raise NotImplementedError(f"{type(self).__name__} has tables but no Kafka client settings")

    def on_tables_recovered(self) -> None:
        """Called after each table recovery (recovery fills the stores directly)."""

    async def before_commit(self) -> None:
        """Awaited before offsets are committed; raise to stop the commit (and the worker)."""


class QuietWorker(faust.Worker):
    """Faust's worker without its terminal spinner.

    At log levels from WARN up the spinner sets the root logger to DEBUG so that it can spin on
    every record; every debug call of Faust and aiokafka then builds a LogRecord. Profiled with
    py-spy: about 10% of the worker's CPU, for a spinner nobody watches in production.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spinner = None
