"""What-if replay: the scans of a time range judged again under the versions in force and under a
candidate policy, side by side, with the worker's pure rules, writing nothing to Kafka.

:class:`Replay` is the comparison (no Kafka): each scan is deduplicated by ``event_id`` as the
worker does, judged by both policies at its event time, with each side's fever rechecks replayed
in order (a second reading within ``recheck_window_minutes`` of a first one is its recheck, per
venue and person, as in the worker), and the managed persons' plans of the register as it is now.
Figures are kept per district and venue type: the decisions under each, the scans whose decision
changes, the reasons gained and lost. :func:`read_range` reads the scans topic for it: from
each partition's offset at the range's start (the broker's offsets-for-times, by record
timestamp) to its offset at the range's end, and the scans are then kept by event time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.contract.codec import decode_scans
from streams.contract.models import Plan, ScanEvent
from streams.ops.console import columns, topic_partitions
from streams.rules.judge import Judgement, judge
from streams.rules.management import phase_on, restriction
from streams.rules.policy import Policy
from streams.times import rfc3339, shanghai_day

KEEP_CHANGES = 1000  # scans whose decision changes, listed in the JSON detail (the figures count them all)


@dataclass
class Figures:
    """One district's and venue type's scans under both policies."""

    scans: int = 0
    current: Counter[str] = field(default_factory=Counter)  # decision -> scans
    candidate: Counter[str] = field(default_factory=Counter)
    changed: int = 0  # scans whose decision differs
    gained: Counter[str] = field(default_factory=Counter)  # reason -> scans that have it only under the candidate
    lost: Counter[str] = field(default_factory=Counter)  # ... only under the versions in force

    def to_json(self) -> dict[str, Any]:
        return {"scans": self.scans, "current": dict(self.current), "candidate": dict(self.candidate),
                "changed": self.changed, "reasons_gained": dict(self.gained), "reasons_lost": dict(self.lost)}


class _Side:
    """One policy's judgements, with its own fever rechecks."""

    def __init__(self, policy: Policy, plans: Mapping[str, Plan]) -> None:
        self.policy = policy
        self.plans = plans
        self.opened: dict[tuple[str, str], float] = {}  # (venue, person) -> event time of the first reading

    def judge(self, scan: ScanEvent) -> tuple[str, Judgement]:
        t = scan.event_time
        version, params = self.policy.params(t, scan.district, scan.venue_type)
        key = (scan.venue_id, scan.person_ref)
        opened = self.opened.get(key)
        managed = None
        plan = self.plans.get(scan.person_ref) if self.plans else None
        if plan is not None and (phase := phase_on(plan, shanghai_day(t))) is not None:
            managed = restriction(plan, phase, scan.venue_id, params.isolation_action, params.monitoring_action)
        verdict = judge(scan, params, opened is not None and 0 <= t - opened <= params.recheck_window_minutes * 60,
                        managed)
        if verdict.ends_recheck:
            self.opened.pop(key, None)
        if verdict.starts_recheck:
            self.opened[key] = t
        return version, verdict


class Replay:
    """Scans of ``[start, end)`` (event time), of ``district`` if given, judged both ways."""

    def __init__(self, current: Policy, candidate: Policy, start: float, end: float, district: str | None = None,
                 plans: Mapping[str, Plan] | None = None) -> None:
        self.start, self.end, self.district = start, end, district
        self.sides = (_Side(current, plans or {}), _Side(candidate, plans or {}))
        self.figures: dict[tuple[str, str], Figures] = {}
        self.changes: list[dict[str, Any]] = []
        self.skipped: Counter[str] = Counter()  # outside the range, another district, duplicates, refused
        self._seen: set[str] = set()

    def add_record(self, key: bytes | None, value: bytes | None) -> None:
        """One record of the scans topic (a scan or a gateway batch), decoded as the worker does."""
        for item in decode_scans(value, key):
            if type(item) is ScanEvent:
                self.add(item)
            else:
                self.skipped["refused"] += 1  # the worker dead-letters these

    def add(self, scan: ScanEvent) -> None:
        if not self.start <= scan.event_time < self.end:
            self.skipped["outside_range"] += 1
            return
        if self.district is not None and scan.district != self.district:
            self.skipped["other_district"] += 1
            return
        if scan.event_id in self._seen:
            self.skipped["duplicate"] += 1
            return
        self._seen.add(scan.event_id)
        (now_version, now), (new_version, new) = (side.judge(scan) for side in self.sides)
        figures = self.figures.get((scan.district, scan.venue_type))
        if figures is None:
            figures = self.figures[(scan.district, scan.venue_type)] = Figures()
        figures.scans += 1
        figures.current[now.decision] += 1
        figures.candidate[new.decision] += 1
        if now.reasons != new.reasons:
            before, after = set(now.reasons), set(new.reasons)
            figures.gained.update(after - before)
            figures.lost.update(before - after)
        if now.decision != new.decision:
            figures.changed += 1
            if len(self.changes) < KEEP_CHANGES:
                self.changes.append({
                    "event_id": scan.event_id, "event_time": rfc3339(scan.event_time), "district": scan.district,
                    "venue_id": scan.venue_id, "venue_type": scan.venue_type, "checkpoint_id": scan.checkpoint_id,
                    "current": {"policy_version": now_version, "decision": now.decision, "reasons": list(now.reasons)},
                    "candidate": {"policy_version": new_version, "decision": new.decision,
                                  "reasons": list(new.reasons)}})

    @property
    def scans(self) -> int:
        return sum(f.scans for f in self.figures.values())

    def table(self) -> list[str]:
        """Per district and venue type: scans, decisions under each, changed, reasons gained and lost."""
        def decisions(counts: Counter[str]) -> str:
            return " ".join(f"{d}={n}" for d, n in sorted(counts.items())) or "-"

        def reasons(counts: Counter[str]) -> str:
            return " ".join(f"{r}={n}" for r, n in counts.most_common()) or "-"

        rows = [("district", "venue type", "scans", "changed", "in force", "candidate", "reasons gained",
                 "reasons lost")]
        for (district, venue_type), f in sorted(self.figures.items()):
            rows.append((district, venue_type, str(f.scans), str(f.changed), decisions(f.current),
                         decisions(f.candidate), reasons(f.gained), reasons(f.lost)))
        lines = columns(rows)
        total = sum(f.changed for f in self.figures.values())
        lines.append(f"{self.scans} scans, {total} with another decision under the candidate"
                     + "".join(f", {n} {what.replace('_', ' ')}" for what, n in sorted(self.skipped.items())))
        return lines

    def to_json(self) -> dict[str, Any]:
        return {"from": rfc3339(self.start), "to": rfc3339(self.end), "district": self.district, "scans": self.scans,
                "skipped": dict(self.skipped),
                "figures": [{"district": d, "venue_type": vt, **f.to_json()}
                            for (d, vt), f in sorted(self.figures.items())],
                "changes": self.changes, "changes_listed": len(self.changes)}


async def read_range(client: Mapping[str, Any], topic: str, start: float, end: float,
                     on_total: Callable[[int], None] | None = None) -> AsyncIterator[list[tuple[bytes | None,
                                                                                              bytes | None]]]:
    """The records of ``topic`` whose record timestamps fall in ``[start, end]`` (by each
    partition's offsets for those times), in offset order per partition, a fetched batch at a
    time; ``on_total`` is told how many there are first (for a progress bar)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from streams.errors import ConfigError

    consumer = AIOKafkaConsumer(**client, group_id=None, enable_auto_commit=False, isolation_level="read_committed",
                                max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=32 * 1024 * 1024)
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, topic)
        if not partitions:
            raise ConfigError(f"topic {topic} does not exist")
        tps = [TopicPartition(topic, p) for p in partitions]
        firsts = await consumer.offsets_for_times({tp: int(start * 1000) for tp in tps})
        afters = await consumer.offsets_for_times({tp: int(end * 1000) + 1 for tp in tps})
        ends = await consumer.end_offsets(tps)
        ranges: dict[Any, tuple[int, int]] = {}
        for tp in tps:
            first, after = firsts.get(tp), afters.get(tp)
            if first is None:
                continue  # nothing at or after the start
            stop = after.offset if after is not None else ends[tp]
            if stop > first.offset:
                ranges[tp] = (first.offset, stop)
        if on_total is not None:
            on_total(sum(stop - first for first, stop in ranges.values()))
        if not ranges:
            return
        consumer.assign(list(ranges))
        for tp, (first, _) in ranges.items():
            consumer.seek(tp, first)
        left = dict(ranges)
        while left:
            batches = await consumer.getmany(*left, timeout_ms=500, max_records=10_000)
            for tp, records in batches.items():
                stop = ranges[tp][1]
                taken = [(r.key, r.value) for r in records if r.offset < stop]
                if taken:
                    yield taken
            for tp in list(left):  # past its last record (or the transaction markers after it)
                if await consumer.position(tp) >= left[tp][1]:
                    del left[tp]
                    consumer.pause(tp)
    finally:
        await consumer.stop()


def run(records: Iterable[tuple[bytes | None, bytes | None]], replay: Replay) -> Replay:
    """Feed ``records`` to ``replay`` (for callers that have them in hand)."""
    for key, value in records:
        replay.add_record(key, value)
    return replay
