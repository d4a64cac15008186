"""The re-keying step: parts per source, merged by the key's owner once every source passed."""

from __future__ import annotations

import orjson

from streams.kafka import rekeying
from streams.kafka.state import PartitionedState
from tests.unit.handlers.harness import Table


def owner(emitted: list[tuple[str, float, int]], name: str = "counts", state: PartitionedState | None = None,
          sources: int = 2) -> rekeying.Owner[int]:
    table = state or PartitionedState(Table(), lambda partition, records: None)
    return rekeying.Owner(name, table, sources, merge=sum, emit=lambda k, at, v: emitted.append((k, at, v)))


def test_a_figure_is_emitted_once_every_source_passed_its_position_and_a_resent_part_replaces() -> None:
    emitted: list[tuple[str, float, int]] = []
    step = owner(emitted)
    step.on_record(rekeying.part(0, "330106", 60.0, 3), 1)
    step.on_record(rekeying.part(0, "330106", 60.0, 4), 1)  # sent again: replaces
    step.on_record(rekeying.part(1, "330106", 60.0, 5), 1)
    step.on_record(rekeying.part(1, "330106", 120.0, 1), 1)
    assert step.on_record(rekeying.watermark(0, 60.0), 1) == 0  # source 1 has not reported
    assert step.on_record(rekeying.watermark(1, 120.0), 1) == 1
    assert emitted == [("330106", 60.0, 9)]
    step.on_record(rekeying.part(0, "330106", 60.0, 100), 1)  # after it was emitted: dropped
    assert step.on_record(rekeying.watermark(0, 120.0), 1) == 1
    assert emitted[1:] == [("330106", 120.0, 1)]


def test_two_uses_share_a_table_without_seeing_each_other() -> None:
    state = PartitionedState(Table(), lambda partition, records: None)
    first: list[tuple[str, float, int]] = []
    second: list[tuple[str, float, int]] = []
    a, b = owner(first, "a", state, sources=1), owner(second, "b", state, sources=1)
    a.on_record(rekeying.part(0, "k", 1.0, 2), 0)
    b.on_record(rekeying.part(0, "k", 1.0, 7), 0)
    a.on_record(rekeying.watermark(0, 1.0), 0)
    assert first == [("k", 1.0, 2)] and second == []
    b.on_record(rekeying.watermark(0, 1.0), 0)
    assert second == [("k", 1.0, 7)]


def test_parts_written_before_the_general_step_are_still_read() -> None:
    emitted: list[tuple[str, float, int]] = []
    step = owner(emitted, sources=1)
    step.on_record(orjson.dumps({"source": 0, "district": "330106", "minute": 60.0, "figures": 5}), 0)
    step.on_record(rekeying.watermark(0, 60.0), 0)
    assert emitted == [("330106", 60.0, 5)]
