"""Rebalances under load: ``python -m benchmarks.rebalance [--seconds 180] [--rate 2000]``.

Offers ``--rate`` single-scan records a second for ``--seconds`` to the workers of one consumer
group while workers come and go every ``--every`` seconds (in turn: one joins, one is killed with
``kill -9``, one joins, one stops cleanly on SIGTERM; never fewer than one worker nor more than
``--max-workers``). Then it checks the outputs (read as their readers read them, committed only):
every scan decided exactly once, no alert written twice; and it reports the latency from a scan's
send to its decision being readable: overall, away from the changes, and for the scans sent in
the seconds around each change (what a rebalance costs). Starts its own local broker unless
``HCS_BOOTSTRAP`` is set. Its short form runs in the drills tier of the tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click
import orjson

from benchmarks.cluster import cluster
from benchmarks.run import CLEAN, Contender, client_kwargs, committed_reader_at_end, input_topic, machine
from streams.contract import topics
from streams.dev.simulate import Simulator

ACTIONS = ("join", "kill", "join", "leave")  # in turn
BEFORE_S, AFTER_S = 2.0, 20.0  # a change's window: the scans sent this long before and after it


@dataclass
class Change:
    at_s: float  # seconds after the load began
    action: str
    workers: int  # after it


@dataclass
class Latency:
    scans: int
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class Report:
    rate: float
    seconds: float
    sent: int
    decided: int
    lost: int  # sent, not decided by the end of the drain (lost, or still behind)
    repeated: int  # decided more than once
    alerts: int
    alerts_repeated: int  # an alert_id written more than once
    overall: Latency
    steady: Latency  # scans sent away from every change
    alert_kinds: dict[str, int] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    around: list[Latency] = field(default_factory=list)  # per change, its window's scans


def latency(values_s: list[float]) -> Latency:
    ms = sorted(v * 1000 for v in values_s)
    if not ms:
        return Latency(0, 0.0, 0.0, 0.0)
    return Latency(len(ms), round(ms[len(ms) // 2], 1), round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1),
                   round(ms[-1], 1))


class Fleet:
    """The workers of one group: started, killed and stopped as the schedule says."""

    def __init__(self, bootstrap: str, prefix: str, workdir: Path, standby: int = 1) -> None:
        self.bootstrap, self.prefix, self.workdir, self.standby = bootstrap, prefix, workdir, standby
        self.app_id = f"rebalance-{uuid.uuid4().hex[:6]}"
        self.running: list[Contender] = []
        self.gone: list[Contender] = []

    def join(self) -> None:
        worker = Contender("hcs", self.bootstrap, input_topic(self.prefix, "load"), self.prefix, self.workdir,
                           hcs_env={"HCS_APP_ID": self.app_id, "HCS_STANDBY_REPLICAS": str(self.standby)})
        if not self.running and not self.gone:
            worker.ensure_hcs_topics()
        worker.start()
        self.running.append(worker)

    def kill(self) -> None:
        worker = self.running.pop(0)  # the oldest: it holds the most state
        assert worker.proc is not None
        os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait(10)
        self.gone.append(worker)

    def leave(self) -> None:
        worker = self.running.pop(0)
        worker.stop()
        self.gone.append(worker)

    def ready(self, timeout_s: float = 120.0) -> None:
        """Until every running worker has decided a first scan or answers its /metrics."""
        deadline = time.monotonic() + timeout_s
        while any(w.done() < 0 for w in self.running):
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers did not start: see {self.workdir}")
            time.sleep(0.25)

    def stop(self) -> None:
        for worker in self.running:
            worker.stop()
        self.gone += self.running
        self.running = []


def conduct(fleet: Fleet, every: tuple[float, float], max_workers: int, started: float, until: float,
            changes: list[Change], rng_seed: int = 5) -> None:
    """The schedule: a change every ``every`` seconds (uniform), in turn from :data:`ACTIONS`,
    skipping what would leave no worker or more than ``max_workers``."""
    import random

    rng = random.Random(rng_seed)
    turn = 0
    while True:
        wait = rng.uniform(*every)
        if time.monotonic() + wait > until - 5:
            return
        time.sleep(wait)
        at = round(time.monotonic() - started, 1)  # when it was done, not when a clean stop ended
        for _ in ACTIONS:
            action = ACTIONS[turn % len(ACTIONS)]
            turn += 1
            if action == "join" and len(fleet.running) < max_workers:
                fleet.join()
                break
            if action in ("kill", "leave") and len(fleet.running) > 1:
                getattr(fleet, action)()
                break
        changes.append(Change(at, action, len(fleet.running)))


async def offer_and_read(bootstrap: str, source: str, decisions: str, alerts: str, rate: float, seconds: float,
                         seed: int, drain_s: float
                         ) -> tuple[dict[str, float], dict[str, list[float]], Counter[str], Counter[str]]:
    """Send ``rate`` scans/s for ``seconds``; read decisions and alerts (committed only) until
    every sent scan is decided or ``drain_s`` passed after the last send. Returns when each scan
    was sent, the times each was decided, the alert ids read and the alerts by kind."""
    from aiokafka import AIOKafkaProducer, TopicPartition

    sim = Simulator(seed=seed, mix=CLEAN)
    consumer = await committed_reader_at_end(bootstrap, [
        *(TopicPartition(decisions, p) for p in range(topics.DECISIONS.partitions)),
        *(TopicPartition(alerts, p) for p in range(topics.ALERTS.partitions))])
    producer = AIOKafkaProducer(**client_kwargs(bootstrap), linger_ms=0)
    await producer.start()
    sent: dict[str, float] = {}
    decided: dict[str, list[float]] = {}
    alert_ids: Counter[str] = Counter()
    alert_kinds: Counter[str] = Counter()
    reading = True

    async def read() -> None:
        while reading:
            for tp, records in (await consumer.getmany(timeout_ms=100)).items():
                now = time.time()
                for record in records:
                    value = orjson.loads(record.value)
                    if tp.topic == decisions:
                        decided.setdefault(value["event_id"], []).append(now)
                    else:
                        alert_ids[value["alert_id"]] += 1
                        alert_kinds[value["kind"]] += 1

    reader = asyncio.create_task(read())
    started = time.time()
    produced = 0
    try:
        for key, value, n in sim.records(int(rate * seconds), batch=1):
            sent[orjson.loads(value)["event_id"]] = time.time()
            await producer.send(source, value=value, key=key)
            produced += n
            ahead = produced / rate - (time.time() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
        await producer.flush()
        deadline = time.monotonic() + drain_s
        while not set(sent) <= set(decided) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        await asyncio.sleep(3.0)  # anything decided twice arrives too
        reading = False
        await reader
    finally:
        reader.cancel()
        await consumer.stop()
        await producer.stop()
    return sent, decided, alert_ids, alert_kinds


def run_drill(bootstrap: str, rate: float, seconds: float, every: tuple[float, float], max_workers: int,
              workdir: Path, seed: int = 17, log: Callable[[str], None] = print, standby: int = 1) -> Report:
    prefix = f"rb-{uuid.uuid4().hex[:6]}."
    fleet = Fleet(bootstrap, prefix, workdir, standby)
    settings_prefix = input_topic(prefix, "load").removesuffix(topics.SCANS.name)
    decisions = topics.topic_name(topics.DECISIONS, settings_prefix)
    alerts = topics.topic_name(topics.ALERTS, settings_prefix)
    changes: list[Change] = []
    try:
        fleet.join()
        fleet.join()
        fleet.ready()
        time.sleep(5.0)  # past the first rebalances
        started = time.monotonic()
        wall_started = time.time()
        # The load in a thread, the changes in this one: a worker dies with the thread that
        # started it (die_with_parent is PR_SET_PDEATHSIG, which follows the thread).
        outcome: list[tuple[dict[str, float], dict[str, list[float]], Counter[str], Counter[str]]] = []
        loader = threading.Thread(target=lambda: outcome.append(asyncio.run(offer_and_read(
            bootstrap, input_topic(prefix, "load"), decisions, alerts, rate, seconds, seed, drain_s=120))))
        loader.start()
        conduct(fleet, every, max_workers, started, started + seconds, changes)
        loader.join()
        sent, decided, alert_ids, alert_kinds = outcome[0]
    finally:
        fleet.stop()
    waits = {e: decided[e][0] - t for e, t in sent.items() if e in decided}
    at = [wall_started + c.at_s for c in changes]
    near = [[w for e, w in waits.items() if t - BEFORE_S <= sent[e] <= t + AFTER_S] for t in at]
    steady = [w for e, w in waits.items() if not any(t - BEFORE_S <= sent[e] <= t + AFTER_S for t in at)]
    report = Report(rate, seconds, len(sent), len(waits), len(set(sent) - set(decided)),
                    sum(1 for e in sent if len(decided.get(e, [])) > 1), len(alert_ids),
                    sum(n - 1 for n in alert_ids.values()), latency(list(waits.values())), latency(steady),
                    dict(alert_kinds.most_common()), changes, [latency(w) for w in near])
    for change, around in zip(report.changes, report.around, strict=True):
        log(f"  {change.at_s:>6.1f} s  {change.action:<5} -> {change.workers} workers: scans sent around it "
            f"p50 {around.p50_ms:.0f} ms, p99 {around.p99_ms:.0f} ms, max {around.max_ms:.0f} ms")
    return report


def summary(report: Report) -> str:
    o, s = report.overall, report.steady
    return "\n".join([
        f"{report.sent:,} scans at {report.rate:,.0f}/s over {report.seconds:.0f} s, {len(report.changes)} changes "
        f"({', '.join(c.action for c in report.changes)})",
        f"decided {report.decided:,}: not decided {report.lost} (lost, or behind after the drain), "
        f"decided twice {report.repeated}; "
        f"{report.alerts:,} alerts, written twice {report.alerts_repeated} ("
        + ", ".join(f"{kind} {n:,}" for kind, n in report.alert_kinds.items()) + ")",
        f"scan -> decision: overall p50 {o.p50_ms:.0f} ms, p99 {o.p99_ms:.0f} ms, max {o.max_ms:.0f} ms; "
        f"away from changes p50 {s.p50_ms:.0f} ms, p99 {s.p99_ms:.0f} ms, max {s.max_ms:.0f} ms"]
        + [f"  {c.action:<5} at {c.at_s:.0f} s: p50 {a.p50_ms:.0f} ms, p99 {a.p99_ms:.0f} ms, max {a.max_ms:.0f} ms"
           for c, a in zip(report.changes, report.around, strict=True)])


@click.command()
@click.option("--seconds", type=float, default=180.0, show_default=True, help="Length of the offered load.")
@click.option("--rate", type=float, default=2000.0, show_default=True, help="Single-scan records per second.")
@click.option("--every", default="20,30", show_default=True, help="Seconds between changes: min,max.")
@click.option("--max-workers", type=int, default=3, show_default=True)
@click.option("--standby", type=int, default=1, show_default=True, help="HCS_STANDBY_REPLICAS of the workers.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench-results/rebalance.json"),
              show_default=True)
def main(seconds: float, rate: float, every: str, max_workers: int, standby: int, out: Path) -> None:
    """Workers joining, killed and leaving under a steady load: exactly-once outputs, and the
    latency a rebalance costs."""
    low, high = (float(x) for x in every.split(","))
    with cluster("rebalance") as (bootstrap, work):
        report = run_drill(bootstrap, rate, seconds, (low, high), max_workers, work,
                           log=lambda line: click.echo(line, err=True), standby=standby)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"machine": machine(), "standby": standby, **asdict(report)}
    out.write_text(json.dumps(doc, indent=2) + "\n")
    click.echo(summary(report))
    click.echo(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
