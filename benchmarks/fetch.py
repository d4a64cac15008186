"""The fetch trade-off: ``python -m benchmarks.fetch``.

A worker's consumer asks the broker for records and the broker answers as soon as it holds
``HCS_FETCH_MIN_BYTES`` of new records for it, or after ``HCS_FETCH_MAX_WAIT_MS``. One byte
answers at once (the least latency, a fetch per few records at low rates, each costing CPU);
more bytes gather records into fewer fetches, at up to the wait in latency. For each candidate
this starts an hcs worker on a local broker, measures its CPU idle (no records) and under 50,
300 and 2,000 single-scan records/s, and the latency from a scan's send to its decision (a
scan's alerts are written in the same write as its decision: their latency is the same).
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from benchmarks.run import Contender, input_topic, measure_latency
from streams.dev.localkafka import LocalKafka, free_port

CANDIDATES = ((1, 100), (16_384, 50), (16_384, 100), (65_536, 100), (65_536, 200))  # (min bytes, max wait ms)
RATES = (50.0, 300.0, 2000.0)


@dataclass
class Point:
    min_bytes: int
    max_wait_ms: int
    rate: float  # scans/s offered; 0 for idle
    cpu_percent: float  # of one core
    p50_ms: float | None
    p99_ms: float | None


def sweep(bootstrap: str, seconds: float, candidates: tuple[tuple[int, int], ...], workdir: Path) -> list[Point]:
    prefix = f"fetch{uuid.uuid4().hex[:6]}."
    points: list[Point] = []
    for min_bytes, wait_ms in candidates:
        env = {"HCS_FETCH_MIN_BYTES": str(min_bytes), "HCS_FETCH_MAX_WAIT_MS": str(wait_ms)}
        idle: list[float] = []
        click.echo(f"fetch_min_bytes={min_bytes} fetch_max_wait_ms={wait_ms}", err=True)
        for rate in RATES:
            source = input_topic(prefix, f"m{min_bytes}-w{wait_ms}-r{int(rate)}")
            contender = Contender("hcs", bootstrap, source, prefix, workdir, hcs_env=env)
            result = measure_latency(contender, "single", rate, seconds, 7, lambda line: click.echo(line, err=True))
            idle.append(result.idle_cpu_percent)
            points.append(Point(min_bytes, wait_ms, rate, result.cpu_percent, result.p50_ms, result.p99_ms))
        points.append(Point(min_bytes, wait_ms, 0.0, round(statistics.median(idle), 2), None, None))
    return points


def table(points: list[Point]) -> str:
    lines = ["fetch_min_bytes  max_wait_ms  idle cpu %   50/s cpu % p99 ms   300/s cpu % p99 ms   2000/s cpu % p99 ms"]
    for key in dict.fromkeys((p.min_bytes, p.max_wait_ms) for p in points):
        at = {p.rate: p for p in points if (p.min_bytes, p.max_wait_ms) == key}
        cells = [f"{at[0.0].cpu_percent:>8.1f}"]
        cells += [f"{at[r].cpu_percent:>9.1f} {at[r].p99_ms or 0:>7.1f}" for r in RATES]
        lines.append(f"{key[0]:>15,}  {key[1]:>11}  " + "   ".join(cells))
    return "\n".join(lines)


@click.command()
@click.option("--candidate", "candidates", multiple=True, metavar="MIN_BYTES:MAX_WAIT_MS",
              help="A setting to measure (repeatable); default: the built-in candidates.")
@click.option("--seconds", type=float, default=10.0, show_default=True, help="Measured seconds per rate.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench-results/fetch.json"), show_default=True)
def main(candidates: tuple[str, ...], seconds: float, out: Path) -> None:
    chosen = tuple((int(b), int(w)) for b, w in (c.split(":") for c in candidates)) or CANDIDATES
    out.parent.mkdir(parents=True, exist_ok=True)
    kafka = LocalKafka(Path(tempfile.mkdtemp(prefix="hcs-fetch-")), heap="1g", owned=True)
    bootstrap = kafka.start(port=free_port()).bootstrap or ""
    try:
        points = sweep(bootstrap, seconds, chosen, out.parent / "bench-work")
    finally:
        kafka.stop()
        shutil.rmtree(kafka.state_dir, ignore_errors=True)
    out.write_text(json.dumps([asdict(p) for p in points], indent=2) + "\n")
    click.echo(table(points))


if __name__ == "__main__":
    main()
