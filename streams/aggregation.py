"""Step two of the district statistics: one owner per district merges the partitions' partials.

Scans of a district are spread over every venue partition. Each source partition sends, once
its stream time passes a minute's end plus the grace, its part of each district's minute
(keyed by district) and then a watermark to every partition of the internal topic. The owner
of a district keeps the partials per source (a re-sent partial replaces, never adds) and emits
``hcs.district-stats.v1`` for a minute once every source partition's watermark has passed it.
"""

from __future__ import annotations

from typing import Any

import orjson

from streams import topics
from streams.encoding import encode
from streams.pipeline import Sink
from streams.rules.compliance import DistrictMinute
from streams.state import PartitionedState
from streams.times import rfc3339

PENDING_PREFIX = "p|"  # district|minute -> {source: figures}
WATERMARK_PREFIX = "wm|"  # owner partition -> {source: through}
DONE_PREFIX = "done|"  # owner partition -> last minute emitted


class StatsOwner:
    def __init__(self, state: PartitionedState, sink: Sink, sources: int) -> None:
        self.state = state
        self.sink = sink
        self.sources = sources  # partitions of the scans topic

    def on_record(self, value: bytes, partition: int) -> int:
        """Handle one partial or watermark; return how many district-stats records were emitted."""
        message: dict[str, Any] = orjson.loads(value)
        if "through" in message:
            return self._on_watermark(int(message["source"]), float(message["through"]), partition)
        self._on_partial(message, partition)
        return 0

    def _on_partial(self, message: dict[str, Any], partition: int) -> None:
        minute = float(message["minute"])
        done = self.state.get(f"{DONE_PREFIX}{partition}")
        if done is not None and minute <= done:
            return  # a re-sent partial of a minute already emitted
        key = f"{PENDING_PREFIX}{message['district']}|{minute}"
        pending = dict(self.state.get(key) or {})
        pending[str(message["source"])] = message["figures"]
        self.state.set(key, pending, partition)

    def _on_watermark(self, source: int, through: float, partition: int) -> int:
        key = f"{WATERMARK_PREFIX}{partition}"
        marks = dict(self.state.get(key) or {})
        if through <= marks.get(str(source), float("-inf")):
            return 0
        marks[str(source)] = through
        self.state.set(key, marks, partition)
        if len(marks) < self.sources:
            return 0  # some source partition has not reported yet
        low = min(marks.values())
        done_key = f"{DONE_PREFIX}{partition}"
        done = self.state.get(done_key)
        if done is not None and low <= done:
            return 0
        emitted = 0
        for pending_key, owner, parts in self.state.items(PENDING_PREFIX):
            if owner != partition:
                continue
            district, minute_text = pending_key[len(PENDING_PREFIX):].split("|")
            minute = float(minute_text)
            if minute > low:
                continue
            total = DistrictMinute()
            for figures in parts.values():
                total.merge(DistrictMinute.from_json(figures))
            self.sink.send(topics.DISTRICT_STATS, district.encode(),
                           encode(total.record(district, minute, rfc3339)))
            self.state.delete(pending_key)
            emitted += 1
        self.state.set(done_key, low, partition)
        return emitted
