"""At-least-once consumption: batches acknowledged only once their outputs are durable.

The worker's input topics are taken in bulk (:mod:`streams.kafka.bulk`); the alerts bridge reads its
topic through a Faust stream, in batches:

``Stream.take_events`` acknowledges a batch's events in a ``finally``: when the agent fails or
is cancelled (a stop) mid-batch, events whose outputs were never written are committed (the
crash test lost records; upstream: faust-streaming/faust#189 and #527, "noack and manual
acknowledgement not working in case of exception"). :func:`batches` yields the same batches but
never acknowledges; :func:`complete` runs the batch's persist step and acknowledges only after
it succeeded. A stop that arrives meanwhile lets the batch finish first, so a clean stop leaves
no batch half-written. :class:`OrderedWriter` (the worker's drains) overlaps a batch's write
with the next batch's handling, one write at a time, in order.

The patches of Faust's and aiokafka's own classes (seek, recovery, stop) are in
:mod:`streams.kafka.patches`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

SealedT = TypeVar("SealedT")
ItemT = TypeVar("ItemT")


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


Ack = Callable[[Sequence[ItemT]], Awaitable[None]]


def stream_ack(stream: Any) -> Ack[Any]:
    """Acknowledge a Faust stream's events (the alerts bridge's)."""
    async def ack(events: Sequence[Any]) -> None:
        for event in events:
            await stream.ack(event)
    return ack


async def complete(ack: Ack[ItemT], items: Sequence[ItemT], persist: Callable[[], Awaitable[None]],
                   finish_on_stop: bool = True) -> None:
    """Run ``persist`` for handled items (events, or bulk batches), then acknowledge them.

    If ``persist`` fails nothing is acknowledged and the error propagates: the drain crashes
    the worker, and a restarted worker reads the items again. If the drain is cancelled (the
    worker stops) while ``persist`` runs, the items are finished and acknowledged before the
    cancellation goes on; with ``finish_on_stop=False`` they are cancelled and left
    unacknowledged instead.
    """
    if not finish_on_stop:
        await persist()
        await ack(items)
        return
    task = asyncio.ensure_future(persist())
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task  # a stop: finish the write in flight, then stop
        await ack(items)
        raise
    await ack(items)


class OrderedWriter(Generic[SealedT, ItemT]):
    """Writes handled batches in order, one write at a time, while the next ones are handled.

    :meth:`handled` takes a batch whose records were handled; if no write is in flight it is
    sealed (``seal``: its outputs and state taken, synchronously) and written at once, else it
    goes into the next write, which starts when the one in flight is done. A slow round trip
    thus makes writes larger instead of the worker idle, and batches handled between two writes
    share one. Items are acknowledged (``ack``) once their write succeeded (:func:`complete`).
    A failed write stops all writing; :meth:`check` raises its error.
    """

    def __init__(self, ack: Ack[ItemT], seal: Callable[[], SealedT],
                 write: Callable[[SealedT], Awaitable[object]]) -> None:
        self._ack, self._seal, self._write = ack, seal, write
        self._events: list[ItemT] = []  # handled, not yet sealed
        self._records = 0  # records of those items
        self._writing: asyncio.Future[None] | None = None
        self._failed: BaseException | None = None

    @property
    def backlog(self) -> int:
        """Records handled and waiting for the next write."""
        return self._records

    def handled(self, items: Sequence[ItemT], records: int | None = None) -> None:
        """``items`` are handled (``records`` records in all; by default one per item)."""
        self._events.extend(items)
        self._records += len(items) if records is None else records
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
        events, self._events, self._records = self._events, [], 0
        try:
            sealed = self._seal()
        except Exception as exc:  # noqa: BLE001 -- a bug; raised in the drain by check()
            self._failed = exc
            return

        async def persist() -> None:
            await self._write(sealed)

        self._writing = asyncio.ensure_future(complete(self._ack, events, persist))
        self._writing.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[None]) -> None:
        if task.cancelled():
            self._failed = asyncio.CancelledError("a write was cancelled")
        elif (error := task.exception()) is not None:
            self._failed = error
        else:
            self._start()


