"""How fast ``hcs replay`` goes: ``python -m benchmarks.replay [--scans 1000000]``.

Publishes ``--scans`` simulated scans (one per record, as checkpoint devices send them) to a
topic of a local broker (or ``HCS_BOOTSTRAP``), then replays them as ``hcs replay`` does — the
broker's offsets for the range's times, every record read and decoded, each scan judged under the
packaged policy and under a candidate — and prints the rate; and, apart, the rate of the
comparison alone (the records in memory), so the reading's share shows.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import click

from streams.dev.simulate import Simulator
from streams.ops.replay import Replay, read_range
from streams.rules.policy import Policy, PolicyVersion, load_policy

# In force since 2023 (after the packaged default's 2020): it judges the simulator's scans of now.
CANDIDATE = PolicyVersion("candidate", 1_700_000_000.0, {"fever_threshold_c": 37.0, "vaccination_required": True},
                          {"mall": {"nat_window_hours": 24}}, {})


def _policies() -> tuple[Policy, Policy]:
    current = load_policy()
    candidate = load_policy()
    candidate.put(CANDIDATE)
    return current, candidate


async def _publish(bootstrap: str, topic: str, n: int) -> tuple[float, float, list[tuple[bytes, bytes]]]:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 8, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, max_batch_size=512 * 1024)
    await producer.start()
    sample: list[tuple[bytes, bytes]] = []
    started = time.time()
    try:
        for key, value, _ in Simulator(seed=5, run_id=uuid.uuid4().hex[:6]).records(n):
            await producer.send(topic, value, key=key)
            if len(sample) < 200_000:
                sample.append((key, value))
        await producer.flush()
    finally:
        await producer.stop()
    return started - 7200, time.time() + 60, sample


async def _replay(bootstrap: str, topic: str, start: float, end: float) -> tuple[int, float]:
    current, candidate = _policies()
    replay = Replay(current, candidate, start, end)
    began = time.perf_counter()
    async for records in read_range({"bootstrap_servers": bootstrap}, topic, start, end):
        for key, value in records:
            replay.add_record(key, value)
    return replay.scans, time.perf_counter() - began


@click.command()
@click.option("--scans", type=int, default=1_000_000, show_default=True)
def main(scans: int) -> None:
    from streams.dev.localkafka import LocalKafka, free_port

    kafka = None
    bootstrap = os.environ.get("HCS_BOOTSTRAP")
    if not bootstrap:
        kafka = LocalKafka(Path(tempfile.mkdtemp(prefix="hcs-replay-")), heap="1g", owned=True)
        bootstrap = kafka.start(port=free_port()).bootstrap or ""
    topic = f"replay-bench-{uuid.uuid4().hex[:6]}"
    try:
        start, end, sample = asyncio.run(_publish(bootstrap, topic, scans))
        judged, took = asyncio.run(_replay(bootstrap, topic, start, end))
    finally:
        if kafka is not None:
            kafka.stop()
            shutil.rmtree(kafka.state_dir, ignore_errors=True)
    current, candidate = _policies()
    alone = Replay(current, candidate, start, end)
    began = time.perf_counter()
    for key, value in sample:
        alone.add_record(key, value)
    alone_s = time.perf_counter() - began
    click.echo(f"replay: {judged:,} scans read from the topic and judged under two policies in {took:.1f} s "
               f"({judged / took:,.0f} scans/s, one core)")
    click.echo(f"the comparison alone: {alone.scans / alone_s:,.0f} scans/s ({alone.scans:,} scans in memory)")


if __name__ == "__main__":
    main()
