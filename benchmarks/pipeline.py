"""The worker's per-scan CPU without Kafka: decode, judge, state, outputs and metrics.

``python -m benchmarks.pipeline --scans 300000 --batch 100`` feeds simulated records straight
into the worker's concepts (:class:`~streams.worker.wiring.Wiring`) (outputs and changelog records are counted,
not sent) and prints CPU microseconds per scan and the garbage collector's pauses. It isolates
hcs's own Python work from Faust and the broker; profile it with
``py-spy record -f raw -- python -m benchmarks.pipeline``.
"""

from __future__ import annotations

import gc
import itertools
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import click
from aiokafka.partitioner import murmur2

from streams.concepts.base import RecordRef
from streams.contract import topics
from streams.dev.simulate import Simulator
from streams.kafka.output import BatchedOutput
from streams.metrics import Metrics
from streams.settings import Settings
from streams.times import SHANGHAI
from streams.worker.app import create_app

FLUSH_EVERY = 10  # records per flush, as the worker's batches of gateway records


@dataclass
class PipelineRun:
    scans: int
    batch: int
    seconds: float
    cpu_us_per_scan: float
    outputs: int
    decisions: int  # the outputs on hcs.decisions.v1
    gc_collections: dict[int, int]
    gc_seconds: float
    worst_gc_pause_ms: float

    def line(self) -> str:
        return (f"{self.scans:,} scans in records of {self.batch}: {self.scans / self.seconds:,.0f} scans/s, "
                f"{self.cpu_us_per_scan:.1f} us CPU per scan, {self.outputs:,} outputs; GC "
                f"{sum(self.gc_collections.values())} collections {self.gc_seconds * 1000:.0f} ms, "
                f"worst pause {self.worst_gc_pause_ms:.1f} ms")


def drop_pending(output: BatchedOutput) -> Counter[str]:
    """Drop every record the pipeline made, encoded and grouped for Kafka (there is no broker
    here); return how many, by topic. Bench-only, so it reaches into the output rather than the
    product having a way to drop records."""
    dropped: Counter[str] = Counter()
    for (topic, _), records in output._pending.items():
        dropped[topic] += len(records)
    output._pending.clear()
    return dropped


def run(scans: int, batch: int, seed: int = 3) -> PipelineRun:
    # Its own data dir: the tables' and the visits' stores on disk, written as the worker writes them.
    data_dir = Path(tempfile.mkdtemp(prefix="hcs-pipeline-"))
    app = create_app(Settings(app_id="pipeline-bench", data_dir=data_dir), metrics=Metrics())
    pipeline, output = app.wiring, app.output
    outputs: Counter[str] = Counter()
    clock = (datetime.now(SHANGHAI) + timedelta(milliseconds=20 * i) for i in itertools.count())
    records = [(key, value) for key, value, _ in Simulator(seed=seed).records(scans, batch=batch, clock=clock)]
    refs = [RecordRef(topics.SCANS, topics.SCANS.name, (murmur2(key) & 0x7FFFFFFF) % topics.SCANS.partitions,
                      offset, key) for offset, (key, _) in enumerate(records)]

    collections = {0: 0, 1: 0, 2: 0}
    paused = {"total": 0.0, "worst": 0.0, "started": 0.0}

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            paused["started"] = time.perf_counter()
            return
        pause = time.perf_counter() - paused["started"]
        collections[info["generation"]] += 1
        paused["total"] += pause
        paused["worst"] = max(paused["worst"], pause)

    gc.freeze()  # as the worker does once started
    gc.callbacks.append(on_gc)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        now = time.time()
        for i, ((_, value), ref) in enumerate(zip(records, refs, strict=True)):
            pipeline.judging.on_record(value, ref, now)
            if i % FLUSH_EVERY == FLUSH_EVERY - 1:
                pipeline.flush()
                outputs += drop_pending(output)  # encoded and grouped for Kafka, not sent
                now = time.time()
        pipeline.flush()
        outputs += drop_pending(output)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        gc.callbacks.remove(on_gc)
        gc.unfreeze()
        shutil.rmtree(data_dir, ignore_errors=True)
    return PipelineRun(scans, batch, wall, cpu / scans * 1e6, outputs.total(), outputs[topics.DECISIONS.name],
                       collections, paused["total"],
                       paused["worst"] * 1000)


@click.command()
@click.option("--scans", type=int, default=300_000, show_default=True)
@click.option("--batch", type=int, default=100, show_default=True, help="Scans per record (1: single scans).")
def main(scans: int, batch: int) -> None:
    """Per-scan CPU of hcs's pipeline, without Kafka."""
    click.echo(run(scans, batch).line())


if __name__ == "__main__":
    main()
