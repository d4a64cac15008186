"""District minutes, source side: each partition's part of every district's minute of event time.

A scan counts in the minute of its ``event_time``; a minute already sent is closed, so a scan
of it that comes later counts (as late) in the earliest open one. Once a partition's stream time
has passed a minute's end plus the grace, its parts of that minute go to the internal partials
topic keyed by district, then a watermark (:mod:`streams.kafka.rekeying`); the owner of each district
merges them (:mod:`streams.concepts.aggregation`). Parts being counted are cached and written to the
state once per flush.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from streams.concepts.base import Input, Timer
from streams.kafka import rekeying
from streams.kafka.state import PartitionedState
from streams.rules.compliance import MINUTE_S, DistrictMinute, StreamClock, window_start
from streams.rules.policy import Policy

MINUTE_PREFIX = "m|"  # partition|district|minute -> this partition's part of a district minute
CLOSED_PREFIX = "mc|"  # partition -> the last minute whose partials were sent
TICK_S = 1.0


class PartialsSink(Protocol):
    """Where this partition's district-minute partials and watermarks go (the internal topic)."""

    def partial(self, district: str, value: bytes) -> None: ...

    def watermark(self, value: bytes) -> None: ...


class DistrictMinutes:
    def __init__(self, state: PartitionedState, partials: PartialsSink, clock: StreamClock, policy: Policy,
                 owned: Callable[[], set[int]]) -> None:
        self.parts = state.keyspace(MINUTE_PREFIX)
        self.closed = state.keyspace(CLOSED_PREFIX)
        self.partials = partials
        self.clock = clock
        self.policy = policy
        self.owned = owned
        self._cache: dict[str, tuple[DistrictMinute, int]] = {}  # live parts, by state key
        self._touched: set[str] = set()  # changed since the last flush

    def inputs(self) -> Sequence[Input]:
        return ()  # counted by the other concepts

    def timers(self) -> Sequence[Timer]:
        return (Timer(TICK_S, self.close),)

    def minute(self, partition: int, district: str, t: float) -> tuple[DistrictMinute, bool]:
        """This partition's part of ``district``'s minute holding ``t``; a minute already sent is
        closed, so its late arrivals count in the earliest open minute (second value True)."""
        start = window_start(t, MINUTE_S)
        closed = self.closed.get(f"{CLOSED_PREFIX}{partition}")
        reattributed = closed is not None and start <= closed
        if reattributed:
            start = closed + MINUTE_S
        key = f"{MINUTE_PREFIX}{partition}|{district}|{start}"
        cached = self._cache.get(key)
        if cached is None:
            raw = self.parts.get(key)  # after a restart, the part recovered from the changelog
            cached = self._cache[key] = (DistrictMinute.from_json(raw) if raw is not None else DistrictMinute(),
                                         partition)
            self.parts.set(key, cached[0].to_json(), partition)
        self._touched.add(key)  # the caller is about to add to it
        return cached[0], reattributed

    def flush(self) -> None:
        """The parts counted since the last flush, to the state."""
        for key in self._touched:
            minute, partition = self._cache[key]
            self.parts.set(key, minute.to_json(), partition)
        self._touched.clear()

    def release(self, partitions: Collection[int]) -> None:
        for key in [key for key, (_, partition) in self._cache.items() if partition in partitions]:
            del self._cache[key]
            # Nothing touched is lost: a batch is flushed before it is acknowledged, and Faust
            # waits for every acknowledgement before it revokes.
            self._touched.discard(key)

    def close(self, now: float) -> int:
        """Send this worker's parts of the minutes that ended a grace ago, then a watermark per
        partition, so the owner of each district can close the minute."""
        closing: dict[int, float] = {}  # partition -> the last fully closed minute, if it moved on
        for partition in sorted(self.owned()):
            stream_now = self.clock.now(partition, now)
            if stream_now == -math.inf:
                continue
            grace = self.policy.defaults_at(stream_now).compliance_grace_seconds
            through = window_start(stream_now - grace, MINUTE_S) - MINUTE_S
            before = self.closed.get(f"{CLOSED_PREFIX}{partition}")
            if before is None or through > before:
                closing[partition] = through
        if not closing:
            return 0
        sent = 0
        for key, partition, raw in self.parts.items():  # one pass for every partition
            last = closing.get(partition)
            if last is None:
                continue
            _, district, start_text = key[len(MINUTE_PREFIX):].split("|")  # partition|district|start
            start = float(start_text)
            if start > last:
                continue
            cached = self._cache.pop(key, None)
            self._touched.discard(key)
            minute = cached[0] if cached is not None else DistrictMinute.from_json(raw)
            self.parts.delete(key)
            self.partials.partial(district, rekeying.part(partition, district, start, minute.to_json()))
            sent += 1
        # Each watermark after its partition's partials (all of them are in this flush, in order).
        for partition, through in closing.items():
            self.closed.set(f"{CLOSED_PREFIX}{partition}", through, partition)
            self.partials.watermark(rekeying.watermark(partition, through))
        return sent
