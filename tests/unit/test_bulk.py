"""The bulk intake: fetched batches queued per topic, unread records and gaps, acknowledgements."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.types import TP
from mode.utils.queues import FlowControlEvent

from streams.kafka.bulk import Batch, BulkIntake, unread
from streams.metrics import Metrics
from streams.rules.policy import load_policy
from streams.settings import Settings


def records(*offsets: int, size: int = 10) -> list[Any]:
    return [SimpleNamespace(offset=offset, value=b"x" * size) for offset in offsets]


def offsets(found: Any) -> list[int]:
    return [record.offset for record in found]


def test_a_contiguous_new_batch_is_taken_whole_without_gaps() -> None:
    batch = records(10, 11, 12)
    fresh, gaps = unread(batch, 9)
    assert fresh is batch and gaps == []
    assert unread(batch, None) == (batch, [])  # a partition never read
    assert unread(batch, 10) == (batch, [])  # after a seek the read offset is the next to read


def test_records_read_before_a_seek_are_dropped_and_gaps_are_found_as_faust_finds_them() -> None:
    fresh, gaps = unread(records(8, 9, 10, 11), 10)
    assert offsets(fresh) == [10, 11] and gaps == []
    # Transaction markers took 13 and 16: Faust records (read + 1, offset) for each jump.
    fresh, gaps = unread(records(12, 14, 15, 17), 11)
    assert offsets(fresh) == [12, 14, 15, 17] and gaps == [(13, 14), (16, 17)]
    assert unread(records(3, 4), 5) == ([], [])


def test_an_inbox_hands_over_every_batch_waiting_and_is_settled_once_they_are_done() -> None:
    async def scenario() -> None:
        flow = FlowControlEvent(initially_suspended=False)
        intake = BulkIntake(flow)
        inbox = intake.add("scans")
        assert intake.inbox("scans") is inbox and intake.inbox("other") is None
        for first in (0, 3, 6):
            await inbox.put(Batch(TP("scans", 0), records(first, first + 1, first + 2)))
        taken = await inbox.take(max_records=5)  # whole batches, until at least 5 records
        assert [offsets(b.records) for b in taken] == [[0, 1, 2], [3, 4, 5]]
        assert inbox.in_hand == 2 and not inbox.idle
        settled = asyncio.ensure_future(intake.settled())
        await asyncio.sleep(0)
        assert not settled.done()  # a rebalance waits for the batches in hand
        inbox.done(2)
        await asyncio.wait_for(settled, 1)
        assert not inbox.idle  # one batch is still queued (not in hand: a rebalance drops it)
        flow.clear()  # what a rebalance does to the flow-controlled queues
        assert inbox.idle
        for first in (0, 3):  # 30 bytes each: a cap of 40 bytes stops after the second
            await inbox.put(Batch(TP("scans", 0), records(first, first + 1, first + 2)))
        await inbox.put(Batch(TP("scans", 0), records(6)))
        assert [offsets(b.records) for b in await inbox.take(100, max_bytes=40)] == [[0, 1, 2], [3, 4, 5]]

        suspended = FlowControlEvent(initially_suspended=True)
        held = BulkIntake(suspended).add("scans")
        put = asyncio.ensure_future(held.put(Batch(TP("scans", 0), records(0))))
        await asyncio.sleep(0.01)
        assert held.idle and not put.done()  # no hand-over while the flow is suspended
        suspended.resume()
        await asyncio.wait_for(put, 1)
        assert not held.idle

    asyncio.run(scenario())


def test_a_batch_is_acknowledged_offset_by_offset_once_and_only_at_or_past_the_commit() -> None:
    from streams.worker.app import create_app

    app = create_app(Settings(app_id="bulk-ack-test"), load_policy(), Metrics())
    consumer: Any = app.consumer
    tp = TP("hcs.scans.v1", 0)
    consumer.app.topics._acking_topics.add(tp.topic)
    consumer._committed_offset[tp] = 5
    consumer.ack_batch(Batch(tp, records(3, 4, 5, 6)))
    consumer.ack_batch(Batch(tp, records(6, 7)))  # 6 again: acknowledged once
    assert sorted(consumer._acked[tp]) == [5, 6, 7] and consumer._n_acked == 3
    assert consumer._new_offset(tp) == 8  # Faust's own commit arithmetic over them
    other = TP("not-acking", 0)
    consumer.ack_batch(Batch(other, records(0)))
    assert consumer._acked.get(other) is None
