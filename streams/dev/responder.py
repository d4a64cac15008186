"""The simulated on-call team: it follows ``hcs.incidents.v1`` and acknowledges most new incidents
after a short while, then resolves most of what it acknowledged; the rest escalate. It makes the
on-call loop visible in ``make run`` (escalations, acks, time to acknowledge) as a district's
team would, with actions on ``hcs.alert-actions.v1`` exactly as ``hcs ack``/``hcs resolve`` write.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.times import rfc3339

RESOLVE_SHARE = 0.7  # of the incidents it acknowledged, how many it resolves


@dataclass
class Responder:
    """Decides, for each incident change it reads, which action to take when (pure but for its rng)."""

    ack_after_s: float
    ack_share: float = 0.8
    seed: int = 1
    counts: Counter[str] = field(default_factory=Counter)
    _rng: random.Random = field(init=False)
    _due: list[tuple[float, int, str, dict[str, Any]]] = field(init=False, default_factory=list)  # (at, seq, incident)
    _decided: set[tuple[str, str, int]] = field(init=False, default_factory=set)
    _seq: int = field(init=False, default=0)
    _latest: dict[str, tuple[str, str]] = field(init=False, default_factory=dict)  # dedup_key -> (incident, status)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def read(self, incident: Mapping[str, Any], now: float) -> None:
        """An incident's change: a new (or returned) TRIGGERED one is acknowledged by most, after a
        while; one it acknowledged is resolved by most, after a while longer."""
        status, level = incident["status"], int(incident["level"])
        self._latest[incident["dedup_key"]] = (incident["incident_id"], status)
        decision = (incident["incident_id"], status, level)
        if decision in self._decided:
            return  # an alert appended, the same state: decided already
        self._decided.add(decision)
        if status == "TRIGGERED" and self._rng.random() < self.ack_share:
            self._schedule(now + self.ack_after_s * self._rng.uniform(0.5, 1.5), "ack", incident, level)
        elif status == "ACKNOWLEDGED" and self._rng.random() < RESOLVE_SHARE:
            self._schedule(now + 2 * self.ack_after_s * self._rng.uniform(0.5, 1.5), "resolve", incident, level)

    def _schedule(self, at: float, action: str, incident: Mapping[str, Any], level: int) -> None:
        self._seq += 1
        value = {"schema": "hcs.alert-action.v1", "event_id": f"sim-oncall-{uuid.uuid4()}",
                 "dedup_key": incident["dedup_key"], "action": action, "at": "", "level": level}
        heapq.heappush(self._due, (at, self._seq, incident["incident_id"], value))

    def due(self, now: float) -> Iterator[tuple[bytes, bytes]]:
        """The actions due by ``now``: (key, value) records for ``hcs.alert-actions.v1``; an action
        on an incident resolved meanwhile is dropped (it would be refused: a dead letter)."""
        while self._due and self._due[0][0] <= now:
            _, _, incident_id, value = heapq.heappop(self._due)
            latest, status = self._latest.get(value["dedup_key"], ("", ""))
            if latest != incident_id or status == "RESOLVED":
                continue  # resolved meanwhile (a silent checkpoint back), or another incident now
            value["at"] = rfc3339(now)
            self.counts[f"oncall_{value['action']}s_sent"] += 1
            yield value["dedup_key"].encode(), orjson.dumps(value)


async def respond(responder: Responder, client: Mapping[str, Any], incidents_topic: str,
                  send: Callable[[bytes, bytes], Awaitable[None]], stop: asyncio.Event) -> None:
    """Follow the incidents from now on and send the responder's actions when due, until ``stop``."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(incidents_topic, **client, group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed", auto_offset_reset="latest")
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            now = time.time()
            for records in batches.values():
                for record in records:
                    if record.value is not None:
                        responder.read(orjson.loads(record.value), now)
            for key, value in responder.due(now):
                await send(key, value)
    finally:
        await consumer.stop()
