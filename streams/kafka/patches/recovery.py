"""The table-recovery patch: a changelog written in transactions recovers to its last record
(Faust waited for the end offset less one, a commit marker never delivered), with progress
logged and told to :mod:`streams.kafka.readiness`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol, cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.tables import TableManager as FaustTableManager
from faust.tables.recovery import Recovery as FaustRecovery
from faust.types import TP
from mode import Service

from streams.kafka.readiness import RecoveryProgress, TableProgress, summary

log = logging.getLogger(__name__)

# The upstream methods these patches replace, with digests of their source (see the package's docstring).
REPLACES = {
    "faust.tables.recovery.Recovery.__init__": "acec96bd78fac09b",
    "faust.tables.recovery.Recovery._set_recovery_started": "bcfebf81ae13fc75",
    "faust.tables.recovery.Recovery._set_recovery_ended": "84badf3f2cfe0d02",
    "faust.tables.recovery.Recovery.on_recovery_completed": "6ef567acf072e46d",
    "faust.tables.recovery.Recovery._resume_streams": "d986a6710c1aca98",
    "faust.tables.recovery.Recovery._build_highwaters": "91b4cc0d3724ae7b",
    "faust.tables.manager.TableManager.recovery": "f0bf5de78b4c3d23",
}


class TablesApp(Protocol):
    """What recovery reads of its app (:class:`streams.kafka.patches.app.AtLeastOnceApp`)."""

    def kafka_client_kwargs(self) -> dict[str, Any]: ...

    def on_tables_recovered(self) -> None: ...


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
        cast(TablesApp, self.app).on_tables_recovered()
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
            app = cast(TablesApp, self.app)
            for tp, offset in (await last_record_offsets(app.kafka_client_kwargs(), ends)).items():
                destination[tp] = offset  # a Counter: update() would add


class TableManager(FaustTableManager):
    """Faust's table manager with :class:`Recovery`."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = Recovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return cast(Recovery, self._recovery)
