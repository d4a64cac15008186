"""What the key-personnel register costs: ``python -m benchmarks.register``.

Memory: decodes ``--plans`` register records (a realistic mix of 14+7+7, 7+3 and 2+14 plans,
hex pseudonyms, a few hundred isolation points) into a :class:`streams.concepts.register.Register` and
reads the process's RSS before and after (the plans as the worker holds them, its indexes
included), per plan. Load time: publishes the same records to a topic of a local broker (or
``HCS_BOOTSTRAP``) and times a replicated view of it from its start until it is loaded, as a
starting worker does before it judges its first scan.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import click
import orjson

from streams.concepts.register import Register
from streams.dev.device import person_ref
from streams.dev.simulate import DISTRICTS, PLANS
from streams.kafka.views import ReplicatedView


def records(n: int, seed: int = 1) -> Iterator[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    today = date(2022, 5, 10)
    shares = [share for share, _, _ in PLANS]
    for i in range(n):
        _, label, phases = rng.choices(PLANS, shares)[0]
        ref = person_ref(f"BENCH{i:013d}", b"register-bench-key-not-a-secret!")
        centralized = phases[0][0] == "centralized_isolation"
        yield ref.encode(), orjson.dumps({
            "schema": "hcs.management.v1", "plan_id": f"plan-{i:09d}", "person_ref": ref,
            "district": rng.choice(list(DISTRICTS)), "plan": label,
            "start_date": (today - timedelta(days=rng.randint(0, 30))).isoformat(),
            "phases": [{"kind": kind, "days": days} for kind, days in phases],
            "isolation_point_id": f"iso-point-{rng.randrange(300):03d}" if centralized else None,
            "status": "active", "updated_at": "2022-05-10T07:00:00+08:00"})


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory(n: int) -> tuple[float, float]:
    """(bytes per plan, seconds to decode and apply each) for ``n`` plans held in a register.

    The records are made as they are applied (none kept), so the RSS growth is the register's
    own memory, with what the allocator keeps of the transient objects: an upper bound."""
    sample = list(records(10_000, seed=2))
    timing = Register("timing")
    started = time.perf_counter()
    for key, value in sample:
        timing.apply(key, value)
    per_plan_s = (time.perf_counter() - started) / len(sample)
    del sample, timing
    gc.collect()
    before = rss_mb()
    register = Register("bench")
    for key, value in records(n):
        register.apply(key, value)
    gc.collect()
    assert len(register.plans) == n
    return (rss_mb() - before) * 1024 * 1024 / n, per_plan_s


async def _load(bootstrap: str, n: int) -> float:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"register-bench-{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 4, 1, topic_configs={"cleanup.policy": "compact"})])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, max_batch_size=512 * 1024)
    await producer.start()
    try:
        for key, value in records(n):
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    register = Register(topic)
    view = ReplicatedView(register.replica, {"bootstrap_servers": bootstrap})
    started = time.perf_counter()
    await view.start()
    try:
        await view.loaded()
        took = time.perf_counter() - started
    finally:
        await view.stop()
    assert len(register.plans) == n, len(register.plans)
    return took


@click.command()
@click.option("--plans", type=int, default=1_000_000, show_default=True)
def main(plans: int) -> None:
    per_plan, decode_s = memory(plans)
    click.echo(f"memory: {per_plan:,.0f} bytes per plan ({per_plan * plans / 2**20:,.0f} MiB for {plans:,}), "
               f"decode and apply {decode_s * 1e6:.1f} us per plan")
    from streams.dev.localkafka import LocalKafka, free_port

    kafka = None
    bootstrap = os.environ.get("HCS_BOOTSTRAP")
    if not bootstrap:
        kafka = LocalKafka(Path(tempfile.mkdtemp(prefix="hcs-register-")), heap="1g", owned=True)
        bootstrap = kafka.start(port=free_port()).bootstrap or ""
    try:
        took = asyncio.run(_load(bootstrap, plans))
    finally:
        if kafka is not None:
            kafka.stop()
            shutil.rmtree(kafka.state_dir, ignore_errors=True)
    click.echo(f"load: {plans:,} plans from the topic in {took:.1f} s ({plans / took:,.0f} plans/s)")


if __name__ == "__main__":
    main()
