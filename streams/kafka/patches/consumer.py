"""The consumer patches: a seek that cannot lose the records fetched around it, a fetch loop that
hands the bulk topics' records over whole, fetch settings of the app's, offsets committed only
once the outputs are durable, and a stop that does not hang while Kafka is unreachable."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, cast

from faust.transport.consumer import CONSUMER_FETCHING, ensure_TP
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import ack_lock
from mode import Service
from mode.utils.futures import notify

from streams.kafka.bulk import Batch, BulkIntake, unread
from streams.kafka.patches.recovery import TableManager

log = logging.getLogger(__name__)

# The upstream methods these patches replace, with digests of their source (see the package's docstring).
REPLACES = {
    "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._create_worker_consumer": "c2701bfc3e6f6cad",
    "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread.on_thread_stop": "8dfc004e258b6c25",
    "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread.seek_to_committed": "775ab0adc4b052ab",
    "faust.transport.consumer.Consumer._drain_messages": "44a2500309e83c63",
    "faust.transport.consumer.Consumer.wait_empty": "e4662fe24f094819",
    "faust.transport.drivers.aiokafka.Consumer._new_consumer_thread": "0870ec53dea75083",
    "faust.transport.consumer.Consumer.perform_seek": "0e8c130ff4b0afd8",
    "faust.transport.consumer.Consumer._commit_offsets": "1a69799041188441",
}


class BulkApp(Protocol):
    """What the consumer patches read of their app (:class:`streams.kafka.patches.app.AtLeastOnceApp`)."""

    fetch_max_wait_ms: int
    fetch_min_bytes: int
    bulk_intake: BulkIntake

    async def before_commit(self) -> None: ...


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, re-positioning every stream partition on a seek, whose
    fetches gather and wait as the app says (:attr:`BulkApp.fetch_max_wait_ms`)."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes 1,500 ms and fetch_min_bytes=1 with no setting to change them; aiokafka
        # reads both when the consumer starts.
        app = cast(BulkApp, self.app)
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


def standby_positions(tps: Iterable[TP], taken: Mapping[TP, int | None]) -> dict[TP, int]:
    """Where each standby partition is read from again: the record after the last one table
    recovery took (``taken``: Faust's standby offsets; None or -1 when it took none)."""
    positions = {}
    for tp in tps:
        last = taken.get(tp)
        positions[tp] = 0 if last is None or last < 0 else last + 1
    return positions


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with a seek that cannot lose the records fetched around it, and
    a fetch loop that hands the records of the app's bulk topics over whole (:mod:`streams.kafka.bulk`).
    """

    @property
    def bulk(self) -> BulkIntake:
        return cast(BulkApp, self.app).bulk_intake

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover -- the fetcher's loop
        """Faust's fetch loop, with each partition's new records of a bulk topic put into its
        inbox as one batch; the records of other topics (the changelogs in recovery) go to
        Faust's conductor one by one, as upstream.

        What upstream does around each record is kept, per batch: records below the read offset
        are dropped (re-fetched around a seek), offset gaps are recorded for the commits, a
        hand-over waits while the flow is suspended and gives up when it is stopped (a rebalance),
        and a fetch that straddles a new generation is not handed over past it.
        """
        try:
            await self._fetch_loop(fetcher)
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

    async def _fetch_loop(self, fetcher: Any) -> None:
        """The loop of :meth:`_drain_messages`: fetch, then hand each partition's records over."""
        callback, to_message = self.callback, self._to_message
        consumer_stopped = cast(Service, self)._stopped.is_set
        fetcher_stopped = cast(Service, fetcher)._stopped.is_set
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        inbox_of = self.bulk.inbox
        track_end = self.app.monitor.track_tp_end_offset
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
                    handing = callback(to_message(tp, record))
                    if handing not in (await self.wait_first(handing, self.suspend_flow.wait())).done:
                        break  # the flow stopped first: not handed over, so not read (a seek follows)
                    read_offset[tp] = record.offset
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

        The standby partitions, which table recovery resumed just before, are sought back too:
        to the record after the last one recovery took. Their records fetched meanwhile wait in
        the changelog queue, which the resumed flow clears; without this seek they were never
        fetched again, and a standby lacked its changelog's first records (all of a small one):
        the worker that took the partition over judged again the scans a killed peer had decided
        but not yet committed, without their dedup marks (the rebalance drill, 1 run in 6).
        """
        self.stop_flow()
        committed = await self.seek_to_committed()
        self._read_offset.update({ensure_TP(tp): offset for tp, offset in committed.items()})
        self._committed_offset.update({ensure_TP(tp): offset for tp, offset in committed.items() if offset})
        recovery = cast(TableManager, self.app.tables).recovery
        positions = standby_positions(recovery.standby_tps & self.assignment(), recovery.standby_offsets)
        if positions:
            await self.seek_wait(positions)


    async def _commit_offsets(self, offsets: Mapping[TP, int], start_new_transaction: bool = True) -> bool:
        """Commit only once everything the app wrote for the acknowledged records is durable."""
        await cast(BulkApp, self.app).before_commit()
        return await super()._commit_offsets(offsets, start_new_transaction)


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :class:`ConsumerThread`."""

    Consumer = Consumer
