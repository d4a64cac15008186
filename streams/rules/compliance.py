"""Three 100% per checkpoint window, and per-district minute figures (pure arithmetic).

Per checkpoint and tumbling event-time window: code misses = max(0, entries - scans) when the
checkpoint reports entries; temperature misses = scans with no temperature; mask misses = scans
with mask false or null. Outcomes count people: code ok = min(scans, entries) (or scans when no
entries are reported), temperature/mask ok = scans without that miss.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import msgspec

from streams.contract.records import DistrictStats, OkMiss

MEASURES = ("code", "temperature", "mask")
MINUTE_S = 60


def window_start(ts: float, size_s: float) -> float:
    """Start of the tumbling window of ``size_s`` seconds (aligned to the epoch) holding ``ts``."""
    return math.floor(ts / size_s) * size_s


class CheckpointWindow(msgspec.Struct, array_like=True, gc=False):
    """What one checkpoint did in one compliance window (in the changelog as a JSON array)."""

    scans: int = 0
    temperature_misses: int = 0
    mask_misses: int = 0
    entries: int = 0
    entries_reported: bool = False

    def add_scan(self, temperature_c: float | None, mask: bool | None) -> None:
        self.scans += 1
        if temperature_c is None:
            self.temperature_misses += 1
        if mask is not True:
            self.mask_misses += 1

    def add_entries(self, entries: int) -> None:
        self.entries += entries
        self.entries_reported = True

    @property
    def code_misses(self) -> int:
        return max(0, self.entries - self.scans) if self.entries_reported else 0

    def outcomes(self) -> dict[str, tuple[int, int]]:
        """(ok, miss) per measure."""
        code_ok = min(self.scans, self.entries) if self.entries_reported else self.scans
        return {
            "code": (code_ok, self.code_misses),
            "temperature": (self.scans - self.temperature_misses, self.temperature_misses),
            "mask": (self.scans - self.mask_misses, self.mask_misses),
        }

    @property
    def violated(self) -> bool:
        return bool(self.code_misses or self.temperature_misses or self.mask_misses)



@dataclass(slots=True)
class DistrictMinute:
    """A district's figures for one minute (or a part of them, from one source partition)."""

    scans: int = 0
    late: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)
    three100: dict[str, list[int]] = field(default_factory=lambda: {m: [0, 0] for m in MEASURES})

    def add_decisions(self, scans: int, decisions: Counter[str], reasons: Counter[str], late: int) -> None:
        """Several scans at once: how many, their decisions and reasons counted, how many late."""
        self.scans += scans
        self.decisions.update(decisions)
        self.reasons.update(reasons)
        self.late += late

    def add_outcomes(self, outcomes: dict[str, tuple[int, int]]) -> None:
        for measure, (ok, miss) in outcomes.items():
            self.three100[measure][0] += ok
            self.three100[measure][1] += miss

    def merge(self, other: DistrictMinute) -> None:
        self.scans += other.scans
        self.late += other.late
        self.decisions.update(other.decisions)
        self.reasons.update(other.reasons)
        self.alerts.update(other.alerts)
        for measure in MEASURES:
            self.three100[measure][0] += other.three100[measure][0]
            self.three100[measure][1] += other.three100[measure][1]

    def to_json(self) -> dict[str, Any]:
        return {"scans": self.scans, "late": self.late, "decisions": dict(self.decisions),
                "reasons": dict(self.reasons), "alerts": dict(self.alerts),
                "three100": {m: list(v) for m, v in self.three100.items()}}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DistrictMinute:
        return cls(raw["scans"], raw["late"], Counter(raw["decisions"]), Counter(raw["reasons"]),
                   Counter(raw["alerts"]), {m: list(v) for m, v in raw["three100"].items()})

    def record(self, district: str, minute_start: float, fmt: Any) -> DistrictStats:
        """The ``hcs.district-stats.v1`` record; ``fmt`` renders epoch seconds as RFC 3339."""
        return DistrictStats(
            district=district, window_start=fmt(minute_start), window_end=fmt(minute_start + MINUTE_S),
            scans=self.scans, decisions=dict(sorted(self.decisions.items())),
            reasons=dict(sorted(self.reasons.items())), alerts=dict(sorted(self.alerts.items())),
            three100={m: OkMiss(v[0], v[1]) for m, v in self.three100.items()}, late=self.late)


@dataclass(slots=True)
class StreamClock:
    """Per-partition stream time: the latest event time read, or the wall clock once idle.

    Windows close by stream time, so a replayed backlog closes them by its own event times,
    while a partition that went quiet for ``idle_s`` follows the wall clock (its silent
    checkpoints and last windows still close).
    """

    idle_s: float = 10.0
    watermark: dict[int, float] = field(default_factory=dict)
    last_read: dict[int, float] = field(default_factory=dict)

    def observe(self, partition: int, event_time: float, wall: float) -> None:
        if event_time > self.watermark.get(partition, -math.inf):
            self.watermark[partition] = event_time
        self.last_read[partition] = wall

    def now(self, partition: int, wall: float) -> float:
        mark = self.watermark.get(partition, -math.inf)
        last = self.last_read.setdefault(partition, wall)  # a partition new to us is not idle yet
        if wall - last >= self.idle_s:
            return max(mark, wall)
        return mark

    def forget(self, partitions: Collection[int]) -> None:
        """Partitions given up: should one come back, it starts as new (a backlog left by its
        other owner is read by its own event times, not by the wall clock of a stale idle time)."""
        for partition in partitions:
            self.watermark.pop(partition, None)
            self.last_read.pop(partition, None)
