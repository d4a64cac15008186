"""State takeover by state size: ``python -m benchmarks.takeover --keys 100000,1000000 --standby 0,1``.

How long a worker that gains partitions takes to be ready to judge them, by the size of the state
those partitions hold, with and without a warm local store, with and without standby replicas.
For each state size and each ``HCS_STANDBY_REPLICAS`` value it fills a fresh group's state
changelog with ``keys`` records (alert memos over the 8 venue partitions, as ``benchmarks.restart``
does), then times four moves of one group of ``hcs worker`` processes (RocksDB stores, each its
own data dir), each from its cause to the moment the worker that gains the partitions answers
``/readyz`` 200 with every partition it is meant to own:

1. ``first``: worker A starts alone on the changelog (all 8 partitions, a cold store);
2. ``join``: worker B joins with an empty data dir (B gains 4 partitions, a cold store);
3. ``leave``: A stops on SIGTERM (B takes all 8; A's 4 come from B's standby replicas when
   there are any, else from the changelog);
4. ``rejoin``: A starts again on its data dir (A gains 4 partitions back, its store warm up to
   what it wrote before it left).

Between moves the workers are left until both are idle (standby replicas caught up). Starts its
own local broker unless ``HCS_BOOTSTRAP`` is set.
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
from benchmarks.restart import fill
from benchmarks.run import Contender, machine, worker_ready
from benchmarks.scaleout import scrape
from streams.contract import topics

MOVES = ("first", "join", "leave", "rejoin")


@dataclass
class Move:
    keys: int
    standby: int
    move: str
    ready_s: float  # from the cause (a start, a SIGTERM) to the gaining worker's /readyz 200
    partitions: int  # of hcs.scans.v1 the gaining worker owns then


def until_owns(worker: Contender, scans_topic: str, partitions: int, since: float, timeout_s: float = 1800.0) -> float:
    """Seconds from ``since`` until ``worker`` is ready owning ``partitions`` partitions of the scans
    topic (asked twice, 0.2 s apart: a rebalance may not have begun at the first answer)."""
    def owns() -> bool:
        scraped = scrape(worker, scans_topic)
        return scraped is not None and scraped[1] == partitions and worker_ready(worker.port)

    deadline = since + timeout_s
    while time.monotonic() < deadline:
        assert worker.proc is not None
        if worker.proc.poll() is not None:
            raise click.ClickException(f"a worker exited with {worker.proc.returncode}: see {worker.log}")
        if owns():
            took = time.monotonic() - since
            time.sleep(0.2)
            if owns():
                return took
        time.sleep(0.1)
    raise click.ClickException(f"not ready with {partitions} partitions in {timeout_s:.0f} s: see {worker.log}")


def until_idle(workers: list[Contender], below: float = 0.15, window_s: float = 3.0, timeout_s: float = 900.0) -> None:
    """Until every worker used less than ``below`` of a core over ``window_s`` (standbys caught up)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = [w.cpu_and_rss()[0] for w in workers]
        time.sleep(window_s)
        if all((w.cpu_and_rss()[0] - b) / window_s < below for w, b in zip(workers, before, strict=True)):
            return
    raise click.ClickException("the workers did not go idle")


def takeover(bootstrap: str, workdir: Path, keys: int, standby: int) -> list[Move]:
    """The four moves for one state size and standby setting."""
    from streams.kafka.cluster import ensure_topics
    from streams.settings import Settings

    tag = uuid.uuid4().hex[:6]
    prefix, app_id = f"takeover-{tag}.", f"takeover-{tag}"
    scans_topic = topics.topic_name(topics.SCANS, prefix)
    asyncio.run(ensure_topics(Settings(bootstrap=bootstrap, topic_prefix=prefix, app_id=app_id)))
    asyncio.run(fill(bootstrap, topics.changelog_topic_name(app_id, "state"), keys))
    env = {"HCS_APP_ID": app_id, "HCS_STANDBY_REPLICAS": str(standby), "HCS_TABLE_STORE": "rocksdb"}
    a = Contender("hcs", bootstrap, scans_topic, prefix, workdir, hcs_env=env)
    b = Contender("hcs", bootstrap, scans_topic, prefix, workdir, hcs_env=env)
    moves: list[Move] = []

    def timed(move: str, gaining: Contender, owns: int, since: float) -> None:
        moves.append(Move(keys, standby, move, round(until_owns(gaining, scans_topic, owns, since), 1), owns))
        click.echo(f"  {keys:,} keys, standby {standby}: {move} ready in {moves[-1].ready_s} s", err=True)

    half = topics.SCANS.partitions // 2
    try:
        started = time.monotonic()
        a.start()
        timed("first", a, topics.SCANS.partitions, started)
        started = time.monotonic()
        b.start()
        timed("join", b, half, started)
        until_idle([a, b])
        started = time.monotonic()
        a.stop()
        timed("leave", b, topics.SCANS.partitions, started)
        until_idle([b])
        started = time.monotonic()
        a.start()  # the same data dir: its store warm up to where it left
        timed("rejoin", a, half, started)
    finally:
        a.stop()
        b.stop()
    return moves


def table(moves: list[Move]) -> str:
    sizes = sorted({m.keys for m in moves})
    standbys = sorted({m.standby for m in moves})
    head = "| keys | standby | " + " | ".join(MOVES) + " |"
    rows = [head, "|" + "---|" * (len(MOVES) + 2)]
    for n in sizes:
        for s in standbys:
            got = {m.move: m.ready_s for m in moves if m.keys == n and m.standby == s}
            if got:
                cells = " | ".join(f"{got[k]:.1f} s" if k in got else "-" for k in MOVES)
                rows.append(f"| {n:,} | {s} | {cells} |")
    return "\n".join(rows)


@click.command()
@click.option("--keys", default="100000,1000000", show_default=True, help="State sizes, comma-separated.")
@click.option("--standby", "standbys", default="0,1", show_default=True,
              help="HCS_STANDBY_REPLICAS values, comma-separated.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench-results/takeover.json"), show_default=True)
def main(keys: str, standbys: str, out: Path) -> None:
    moves: list[Move] = []
    with cluster("takeover") as (bootstrap, work):
        for n in (int(k) for k in keys.split(",")):
            for s in (int(v) for v in standbys.split(",")):
                moves += takeover(bootstrap, work, n, s)
    click.echo("Seconds from the cause (a start; a SIGTERM for leave) to the gaining worker ready with its partitions:")
    click.echo(table(moves))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "moves": [asdict(m) for m in moves]}, indent=2))


if __name__ == "__main__":
    main()
