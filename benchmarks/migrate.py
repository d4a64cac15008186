"""Growing past the partitions, timed: ``python -m benchmarks.migrate --keys 100000,1000000``.

How long ``hcs migrate`` keeps a district's scans waiting: the old generation's workers are
stopped while it carries their state into the new generation, so the carry is the outage. For
each state size it fills an old generation's state changelog (8 venue partitions) with ``keys``
records, half alert memos (which go to every partition inheriting the old one's venues: two
copies at 8 -> 16) and half fever rechecks (which go to their venue's partition: one), fills the
dedup marks' changelog with ``keys`` marks (two copies each), then runs the move to 16 partitions
in this process and reports the seconds from its start to ``state carried`` (the outage) and the
records read and written. Starts its own local broker unless ``HCS_BOOTSTRAP`` is set.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from benchmarks.cluster import cluster
from benchmarks.run import machine
from streams.contract import topics
from streams.contract.encoding import encode
from streams.kafka.state import PARTITION_SPAN


@dataclass
class Carry:
    keys: int  # state records, and as many dedup marks
    carried_s: float  # from the command's start to "state carried": the outage
    read: int
    written: int


async def fill(bootstrap: str, app_id: str, keys: int) -> None:
    """``keys`` state records (half alert memos, half rechecks) and ``keys`` dedup marks, as the
    worker writes them, over the 8 venue partitions of the old generation."""
    from aiokafka import AIOKafkaProducer

    from streams.kafka.output import partition_for

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        now, n = time.time(), topics.SCANS.partitions
        state, seen = topics.changelog_topic_name(app_id, "state"), topics.changelog_topic_name(app_id, "seen")
        for i in range(keys):
            if i % 2:
                p = i % n
                key, value = f"a|KEY_PERSON_DETECTED|{i:064x}|v", [p, [now - 60, 0, now - 60, now - 60, []]]
            else:
                venue = f"venue-{i}"
                p = partition_for(venue.encode(), n)
                key = f"f|{venue}|{i:064x}"
                value = [p, {"opened": now, "due": now + 600, "event_id": f"e-{i}", "checkpoint_id": f"{venue}-a",
                             "district": "330106", "venue_type": "mall", "policy_version": "v"}]
            await producer.send(state, encode(value), key=encode(key), partition=p)
            mark = int(now + 86_400) * PARTITION_SPAN + i % n
            await producer.send(seen, str(mark).encode(), key=encode(f"e|scan-{i}"), partition=i % n)
        await producer.flush()
    finally:
        await producer.stop()


def carry(bootstrap: str, keys: int) -> Carry:
    from streams.kafka.cluster import ensure_topics
    from streams.ops.migrate import Generation, migrate
    from streams.settings import Settings

    tag = uuid.uuid4().hex[:6]
    old = Generation(f"mig-{tag}.", f"mig-{tag}", topics.SCANS.partitions)
    asyncio.run(ensure_topics(Settings(bootstrap=bootstrap, topic_prefix=old.prefix, app_id=old.app_id)))
    asyncio.run(fill(bootstrap, old.app_id, keys))
    new = Settings(bootstrap=bootstrap, topic_prefix=f"mig2-{tag}.", app_id=f"mig2-{tag}",
                   venue_partitions=old.venue_partitions * 2)
    carried: list[float] = []
    started = time.monotonic()

    def say(line: str) -> None:
        if line.startswith("state carried"):
            carried.append(time.monotonic() - started)
        click.echo(f"  {line}", err=True)

    out = asyncio.run(migrate(new, old, until_idle_s=1.0, say=say))
    return Carry(keys, round(carried[0], 1), sum(out.read.values()), sum(out.written.values()))


@click.command()
@click.option("--keys", default="100000,1000000", show_default=True, help="State sizes, comma-separated.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench-results/migrate.json"), show_default=True)
def main(keys: str, out: Path) -> None:
    runs: list[Carry] = []
    with cluster("migrate") as (bootstrap, _):
        for n in (int(k) for k in keys.split(",")):
            runs.append(carry(bootstrap, n))
    click.echo("| state keys (+ as many dedup marks) | records read | written | state carried in |")
    click.echo("|---|---|---|---|")
    for run in runs:
        click.echo(f"| {run.keys:,} | {run.read:,} | {run.written:,} | {run.carried_s:.1f} s |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "runs": [asdict(r) for r in runs]}, indent=2))


if __name__ == "__main__":
    main()
