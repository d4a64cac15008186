"""Fault drill: a worker restarted as an operator would (a rolling restart) while a register of
millions of plans loads must not close an isolation point's day before it knows the point's residents.

The point's observations of a past day are read by the first run, which stops before that day's
close (its partition's stream time is still in the day). The restart recovers the point's state
at once, but the register takes many seconds to load (its residents' plans come last); the
partition, with nothing new to read, follows the wall clock after its idle time, and the day is
due. A tick that ran before the register was loaded closed the day with ``residents: 0`` and no
``OBSERVATION_MISSED`` for a resident one check short, and the day never reopens (reproduced 3 of
3 before the ticks waited for the views). Here: one IsolationDay with its three residents, and
the missed check raised, once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.contract import topics
from streams.dev.device import person_ref
from streams.rules.policy import load_policy
from streams.times import SHANGHAI
from tests import factories as f
from tests.integration.kafka_io import WorkerProcess, create_topics, name, produce, read

pytestmark = [pytest.mark.integration, pytest.mark.drill]

# 10⁶ plans loaded here in 9-12 s, about the partition's idle time (10 s), so a tick that did not
# wait closed the day 1 run in 2; with 2 x 10⁶ (~20 s) it did every time (reproduced before the fix).
PLANS = 2_000_000
POINT = "iso-drill"
R1, R2, R3 = f.pseudonym(601), f.pseudonym(602), f.pseudonym(603)
GRACE = timedelta(minutes=load_policy().params(0, "", "isolation_point")[1].observation_grace_minutes)


def filler(n: int) -> Iterator[tuple[bytes, bytes]]:
    """``n`` plans of other people, of five phases each, centralized at other points (as a
    district's register is: the drill's point has only its three residents)."""
    rng = random.Random(11)
    start = (datetime.now(SHANGHAI) - timedelta(days=3)).date().isoformat()
    for i in range(n):
        ref = person_ref(f"DRILL{i:013d}", b"register-drill-key-not-a-secret!")
        yield ref.encode(), orjson.dumps({
            "schema": "hcs.management.v1", "plan_id": f"drill-{i:09d}", "person_ref": ref,
            "district": "330106", "plan": "14+7+7+3+3", "start_date": start,
            "phases": [{"kind": "centralized_isolation", "days": rng.randint(7, 14)},
                       {"kind": "home_isolation", "days": 7}, {"kind": "health_monitoring", "days": 7},
                       {"kind": "home_isolation", "days": 3}, {"kind": "health_monitoring", "days": 3}],
            "isolation_point_id": f"iso-other-{i % 300:03d}", "status": "active",
            "updated_at": "2022-05-10T07:00:00+08:00"})


def publish(bootstrap: str, topic: str, records: Iterator[tuple[bytes, bytes]]) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                    max_batch_size=512 * 1024)
        await producer.start()
        try:
            for key, value in records:
                await producer.send(topic, value, key=key)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(run())


def wait_for_state(bootstrap: str, changelog: str, key: bytes, timeout_s: float = 60) -> None:
    """Return once the worker's state changelog holds ``key`` (committed): its batch is written."""
    async def run() -> None:
        consumer = AIOKafkaConsumer(changelog, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    isolation_level="read_committed", enable_auto_commit=False, group_id=None)
        await consumer.start()
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    for records in (await consumer.getmany(timeout_ms=200)).values():
                        if any(r.key is not None and key in r.key for r in records):
                            return
        finally:
            await consumer.stop()

    asyncio.run(run())


def test_a_restart_with_a_million_plan_register_closes_a_due_isolation_day_with_its_residents(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    since = datetime.now(SHANGHAI) - GRACE
    to_next = (since.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1) - since).total_seconds()
    if to_next < 300:  # a day must not become due while the drill runs
        time.sleep(to_next + 1)
        since = datetime.now(SHANGHAI) - GRACE
    day = since.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)  # closed, by its grace
    register = name(topics.MANAGEMENT, topic_prefix)
    publish(kafka_bootstrap, register, filler(PLANS))
    # The residents' plans last: the register's load reaches them at its end.
    produce(kafka_bootstrap, register, [
        (ref.encode(), f.encode(f.plan(ref, start=(day - timedelta(days=1)).date().isoformat(),
                                       isolation_point_id=POINT, district="330110")))
        for ref in (R1, R2, R3)])

    first = WorkerProcess(worker_env, tmp_path / "worker-1.log").start(timeout_s=240)
    try:
        observations = [
            {"schema": "hcs.observation.v1", "event_id": f"drill-obs-{ref[:8]}-{h}", "isolation_point_id": POINT,
             "district": "330110", "person_ref": ref, "kind": "temperature",
             "observed_at": f.ts(day + timedelta(hours=h)), "temperature_c": 36.6}
            for ref in (R1, R2, R3) for h in (8, 20) if (ref, h) != (R2, 20)]  # R2 missed its evening check
        produce(kafka_bootstrap, name(topics.OBSERVATIONS, topic_prefix),
                [(POINT.encode(), f.encode(o)) for o in observations])
        # Stop as soon as the point's state is written: its partition's stream time is still in
        # the day (it follows the wall clock only after 10 idle seconds), so the day is not closed.
        wait_for_state(kafka_bootstrap, f"{worker_env['HCS_APP_ID']}-state-changelog", f"p|{POINT}".encode())
    finally:
        first.stop()
    status = name(topics.ISOLATION_STATUS, topic_prefix)
    assert read(kafka_bootstrap, status, lambda v: False, timeout_s=3) == [], first.log_tail()  # not closed yet

    second = WorkerProcess(worker_env, tmp_path / "worker-2.log").start(timeout_s=240)
    try:
        days = read(kafka_bootstrap, status, lambda v: len(v) >= 1, timeout_s=90, settle_s=3)
        alerts = read(kafka_bootstrap, name(topics.ALERTS, topic_prefix), lambda v: len(v) >= 1, settle_s=3)
    finally:
        second.stop()
    assert [(d["date"], d["residents"], d["temperature"]) for d in days] == [
        (day.date().isoformat(), 3, {"due": 6, "done": 5})], second.log_tail()
    assert [(a["kind"], a["person_ref"]) for a in alerts] == [("OBSERVATION_MISSED", R2)]
