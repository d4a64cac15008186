"""What more workers add: ``python -m benchmarks.scaleout --workers 1,2,4``.

Preloads a backlog (``--scans`` simulated scans, once one per record and once in gateway batches
of 100), then, for each worker count N and each form, starts N ``hcs worker`` processes of one
consumer group (one app id; each its own data dir and web port) on it and measures, from each
worker's own ``/metrics``:

- the time from the processes' start to the first decision, and to every worker holding
  partitions (the group's first rebalances done);
- the aggregate scans/s from then on, until the backlog is drained or ``--budget`` seconds pass;
- per worker: its CPU seconds in that window (``/proc``), its share of the scans judged, and the
  partitions of ``hcs.scans.v1`` it owns (``hcs_partitions_assigned``).

A worker is one process, and its event loop one core at most: N workers can use N cores. On a
machine with fewer cores than workers plus the broker, N workers share the same cores and the
figures measure how the work is shared, not a speed-up (the output says so). The script runs
unchanged on a bigger machine. Starts its own local broker unless ``HCS_BOOTSTRAP`` is set.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.cluster import cluster
from benchmarks.run import MODES, Contender, input_topic, machine, preload
from streams.contract import topics

POLL_S = 0.5


@dataclass
class Worker:
    scans: int  # judged in the measured window
    cpu_s: float  # in the measured window
    partitions: int  # of hcs.scans.v1, at the end of the window


@dataclass
class Scale:
    mode: str
    workers: int
    first_decision_s: float  # from the processes' start
    all_assigned_s: float  # every worker owns partitions of hcs.scans.v1
    seconds: float  # the measured window
    scans: int  # judged in it, all workers
    scans_per_s: float
    per_worker: list[Worker] = field(default_factory=list)


def scrape(contender: Contender, scans_topic: str) -> tuple[int, int] | None:
    """(scans judged, partitions of ``scans_topic`` owned) from a worker's /metrics; None while it
    does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{contender.port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    judged, owned = 0.0, 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "hcs_scans_total":
                judged += sample.value
            elif sample.name == "hcs_partitions_assigned" and sample.labels.get("topic") == scans_topic:
                owned = sample.value
    return int(judged), int(owned)


def measure(bootstrap: str, prefix: str, mode: str, n: int, total: int, budget_s: float, workdir: Path,
            log: Callable[[str], None], standby: int = 1) -> Scale:
    app_id = f"scaleout-{mode}-{n}-{uuid.uuid4().hex[:6]}"
    env = {"HCS_APP_ID": app_id, "HCS_STANDBY_REPLICAS": str(standby)}
    workers = [Contender("hcs", bootstrap, input_topic(prefix, mode), prefix, workdir, hcs_env=env)
               for _ in range(n)]
    scans_topic = topics.topic_name(topics.SCANS, workers[0].env["HCS_TOPIC_PREFIX"])
    workers[0].ensure_hcs_topics()
    started = time.monotonic()
    for worker in workers:
        worker.start()
    first = assigned = None
    window: tuple[float, list[int], list[float]] | None = None  # start, scans and CPU of each at its start
    try:
        while True:
            time.sleep(POLL_S)
            now = time.monotonic()
            seen = [scrape(w, scans_topic) for w in workers]
            if now - started > 300:
                raise RuntimeError(f"{n} workers did not all take partitions within 300 s: see {workdir}")
            if any(s is None for s in seen):
                continue
            judged = [s[0] for s in seen if s is not None]
            owned = [s[1] for s in seen if s is not None]
            if first is None and sum(judged) > 0:
                first = now - started
            if window is None and all(owned) and sum(owned) == topics.SCANS.partitions:
                assigned = now - started
                window = (now, judged, [w.cpu_and_rss()[0] for w in workers])
                continue
            if window is not None and (sum(judged) >= total or now - window[0] >= budget_s):
                cpus = [w.cpu_and_rss()[0] for w in workers]
                seconds = now - window[0]
                done = [j - j0 for j, j0 in zip(judged, window[1], strict=True)]
                scale = Scale(mode, n, round(first or 0.0, 1), round(assigned or 0.0, 1), round(seconds, 1),
                              sum(done), round(sum(done) / seconds, 1),
                              [Worker(d, round(c - c0, 2), o) for d, c, c0, o in zip(done, cpus, window[2], owned,
                                                                                    strict=True)])
                log(f"  {mode:<6} {n} workers: {scale.scans_per_s:>9,.0f} scans/s  first decision "
                    f"{scale.first_decision_s:.1f} s, all assigned {scale.all_assigned_s:.1f} s; per worker "
                    + ", ".join(f"{w.partitions} partitions {w.scans / max(1, scale.scans):.0%} of scans "
                                f"{w.cpu_s / seconds:.0%} CPU" for w in scale.per_worker))
                return scale
    finally:
        for worker in workers:
            worker.stop()


def table(results: list[Scale], cpus: int | None) -> str:
    lines = [f"{'form':<7}{'workers':>8}{'scans/s':>11}{'vs 1 worker':>12}{'first decision':>16}"
             f"{'CPU/worker':>12}  partitions per worker"]
    base = {r.mode: r.scans_per_s for r in results if r.workers == 1}
    for r in results:
        cpu = sum(w.cpu_s for w in r.per_worker) / len(r.per_worker) / r.seconds if r.seconds else 0.0
        speedup = r.scans_per_s / base[r.mode] if base.get(r.mode) else 0.0
        lines.append(f"{r.mode:<7}{r.workers:>8}{r.scans_per_s:>11,.0f}{speedup:>11.2f}x{r.first_decision_s:>15.1f}s"
                     f"{cpu:>11.0%}  " + "/".join(str(w.partitions) for w in r.per_worker))
    most = max(r.workers for r in results)
    if cpus is not None and most + 1 > cpus:
        lines.append(f"\n{cpus} cores for up to {most} workers and the broker: the workers share the cores, so "
                     "these figures measure how the work is shared, not a speed-up.")
    return "\n".join(lines)


@click.command()
@click.option("--workers", default="1,2,4", show_default=True, help="Worker counts, comma-separated.")
@click.option("--scans", type=int, default=1_000_000, show_default=True, help="Scans preloaded (each form).")
@click.option("--budget", type=float, default=30.0, show_default=True, help="Seconds measured per run at most.")
@click.option("--forms", default="single,batch", show_default=True, help="single (a scan a record), batch (100).")
@click.option("--standby", type=int, default=1, show_default=True, help="HCS_STANDBY_REPLICAS of the workers.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench-results/scaleout.json"),
              show_default=True)
def main(workers: str, scans: int, budget: float, forms: str, standby: int, out: Path) -> None:
    """Aggregate throughput, CPU and partition share of 1, 2, 4... workers of one group on a backlog."""
    counts = [int(w) for w in workers.split(",")]
    modes = [m for m in forms.split(",") if m in MODES]
    with cluster("scaleout") as (bootstrap, work):
        prefix = f"scaleout-{uuid.uuid4().hex[:6]}."
        preload(bootstrap, prefix, scans, seed=7, log=lambda line: click.echo(line, err=True))
        results = [measure(bootstrap, prefix, mode, n, scans, budget, work, lambda line: click.echo(line, err=True),
                           standby) for mode in modes for n in counts]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "scans": scans, "budget_s": budget, "standby": standby,
                               "results": [asdict(r) for r in results]}, indent=2) + "\n")
    click.echo(table(results, os.cpu_count()))
    click.echo(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
