"""The district statistics: one owner per district merges the venue partitions' minutes.

Each venue partition keeps its part of every district-minute (``streams/concepts/minutes.py``) and,
once the minute is over, sends it keyed by district with a watermark (:mod:`streams.kafka.rekeying`);
the owner of a district emits ``hcs.district-stats.v1`` for a minute once every source
partition's watermark has passed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streams.concepts.base import Input, RecordRef, Sink, Timer
from streams.contract import topics
from streams.contract.encoding import encode
from streams.kafka.rekeying import Owner
from streams.kafka.state import PartitionedState
from streams.rules.compliance import DistrictMinute
from streams.times import rfc3339


class StatsOwner(Owner[DistrictMinute]):
    """The owner side of the district statistics, writing to ``sink`` (tests swap it for a recorder).
    Its state keys are the bare prefixes they were written with before :mod:`streams.kafka.rekeying`."""

    def __init__(self, state: PartitionedState, sink: Sink, sources: int) -> None:
        super().__init__("district-stats", state, sources, self._merge, self._emit, prefix="")
        self.sink = sink

    def inputs(self) -> Sequence[Input]:
        # The partials' partitions are districts', not venues': nothing of the venue state to release.
        return (Input("aggregate_district_stats", topics.PARTIALS, self.on_partial, by_venue=False),)

    def timers(self) -> Sequence[Timer]:
        return ()

    def on_partial(self, value: bytes | None, ref: RecordRef, now: float) -> None:
        self.on_record(value or b"", ref.partition)  # internal records: an empty one is a bug

    @staticmethod
    def _merge(parts: list[Any]) -> DistrictMinute:
        total = DistrictMinute()
        for figures in parts:
            total.merge(DistrictMinute.from_json(figures))
        return total

    def _emit(self, district: str, minute: float, total: DistrictMinute) -> None:
        self.sink.send(topics.DISTRICT_STATS, district.encode(), encode(total.record(district, minute, rfc3339)))
