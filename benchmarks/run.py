"""The benchmark orchestrator: preload, rotate the contenders, measure, report.

Every contender runs in its own process against the real broker, so CPU seconds and peak RSS
(``VmHWM``) are measured alike. Throughput is the rate between the first and the last progress
sample of a run (startup excluded) within a time budget; latency is from a record's produce
time to its decision being readable, at a fixed offered load.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from streams.settings.security import KafkaSecurity

import click
import orjson

from benchmarks.neighbours import neighbours
from streams.contract import topics
from streams.dev.localkafka import LocalKafka, die_with_parent, free_port
from streams.dev.simulate import Mix, Simulator
from streams.errors import HcsError
from streams.settings import ENV_BOOTSTRAP, Settings
from streams.times import SHANGHAI

CHECKOUT = Path(__file__).resolve().parents[1]  # the source checkout holding benchmarks/
CONTENDERS = ("raw", "bare", "hcs")
MODES = {"single": 1, "batch": 100}
LOW_RATE = 50.0  # scans/s: a quiet district's worker, for its CPU per scan at a low rate
IDLE_S = 3.0  # seconds of a started contender's CPU measured before any record
# Benchmark traffic: valid, unique scans (no faults, no duplicates) so that every contender
# does the same work per scan.
CLEAN = Mix(duplicate=0.0, malformed=0.0, late=0.0)


@dataclass
class Run:
    contender: str
    mode: str
    scans: int
    seconds: float
    scans_per_s: float
    cpu_s: float
    peak_rss_mb: float


@dataclass
class Latency:
    contender: str
    mode: str
    offered_scans_per_s: float
    scans: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    cpu_percent: float = 0.0  # of one core, while the load was offered (its warm-up excluded)
    idle_cpu_percent: float = 0.0  # of one core, before any record came


@dataclass
class Report:
    machine: dict[str, Any]
    scans: int
    rounds: int
    budget_s: float
    background_load: int = 0  # spinning neighbour processes during the whole run (benchmarks.neighbours)
    runs: list[Run] = field(default_factory=list)
    latencies: list[Latency] = field(default_factory=list)

    def median(self, contender: str, mode: str) -> float:
        rates = [r.scans_per_s for r in self.runs if r.contender == contender and r.mode == mode]
        return statistics.median(rates) if rates else 0.0

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for mode in MODES:
            raw, bare, hcs = (self.median(c, mode) for c in CONTENDERS)
            runs = [r for r in self.runs if r.mode == mode]
            out[mode] = {
                "scans_per_s": {"raw": raw, "bare": bare, "hcs": hcs},
                "hcs_over_raw": hcs / raw if raw else None,
                "hcs_over_bare": hcs / bare if bare else None,
                "cpu_s_per_100k": {c: statistics.median([r.cpu_s / r.scans * 100_000 for r in runs
                                                         if r.contender == c and r.scans]) for c in CONTENDERS
                                   if any(r.contender == c and r.scans for r in runs)},
                "peak_rss_mb": {c: max((r.peak_rss_mb for r in runs if r.contender == c), default=0.0)
                                for c in CONTENDERS},
            }
        return out


def machine() -> dict[str, Any]:
    mem = Path("/proc/meminfo").read_text().split("\n")[0] if Path("/proc/meminfo").exists() else ""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "memory": mem.split(":")[-1].strip()}


SECURE_ENV = "HCS_BENCH_SECURE"  # set when the bench runs on the caller's cluster (HCS_BOOTSTRAP), with its security


def bench_security() -> KafkaSecurity:
    """The caller's HCS_KAFKA_* security on the caller's cluster, none on the bench's own broker."""
    from streams.settings.security import KafkaSecurity

    return KafkaSecurity.from_env(os.environ) if os.environ.get(SECURE_ENV) else KafkaSecurity()


def client_kwargs(bootstrap: str) -> dict[str, Any]:
    """Arguments of the bench's own aiokafka clients and contenders."""
    return {"bootstrap_servers": bootstrap, **bench_security().aiokafka_kwargs()}


# -- preloading ------------------------------------------------------------------------------------

async def _create(bootstrap: str, names: list[str], partitions: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(**client_kwargs(bootstrap))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


async def _delete(bootstrap: str, name: str | None, containing: str | None) -> None:
    """Delete topic ``name`` and every topic whose name contains ``containing``."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**client_kwargs(bootstrap))
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t == name or (containing and containing in t)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**client_kwargs(bootstrap), linger_ms=20, max_batch_size=1024 * 1024,
                                max_request_size=8 * 1024 * 1024)
    await producer.start()
    try:
        pending = []
        for key, value in records:
            pending.append(await producer.send(topic, value=value, key=key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def preload(bootstrap: str, prefix: str, scans: int, seed: int, log: Callable[[str], None]) -> dict[str, int]:
    """The same simulated scans twice: one per record, and in gateway batches of 100."""
    started = time.monotonic()
    clock = (datetime(2022, 5, 10, 8, tzinfo=SHANGHAI) + timedelta(milliseconds=5 * i) for i in range(10**9))
    sim = Simulator(seed=seed, mix=CLEAN)
    singles = [(k, v) for k, v, _ in sim.records(scans, batch=1, clock=clock)]
    batches: list[tuple[bytes, bytes]] = []
    by_venue: dict[bytes, list[bytes]] = {}
    for key, value in singles:
        group = by_venue.setdefault(key, [])
        group.append(value)
        if len(group) == MODES["batch"]:
            batches.append((key, _batch(group)))
            by_venue[key] = []
    batches += [(k, _batch(g)) for k, g in by_venue.items() if g]
    names = {mode: input_topic(prefix, mode) for mode in MODES}
    asyncio.run(_create(bootstrap, list(names.values()), topics.SCANS.partitions))
    asyncio.run(_produce(bootstrap, names["single"], singles))
    asyncio.run(_produce(bootstrap, names["batch"], batches))
    log(f"preloaded {scans} scans as {len(singles)} records and {len(batches)} batches "
        f"in {time.monotonic() - started:.0f}s")
    return {"single_records": len(singles), "batch_records": len(batches)}


def input_topic(prefix: str, name: str) -> str:
    """Inputs are named as hcs's own scans topic behind a per-input prefix, so hcs reads them as they are."""
    return topics.topic_name(topics.SCANS, f"{prefix}{name}.")


def _batch(values: list[bytes]) -> bytes:
    return b'{"schema":"hcs.scan-batch.v1","gateway_id":"bench","scans":[' + b",".join(values) + b"]}"


# -- running one contender ---------------------------------------------------------------------------

def worker_ready(port: int | str) -> bool:
    """An hcs worker's ``/readyz`` on ``port`` answers 200 (False while it does not answer, or answers
    otherwise)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


class Contender:
    """One contender process on an input topic, with a way to read how many scans it did."""

    def __init__(self, kind: str, bootstrap: str, source: str, prefix: str, workdir: Path,
                 policy: Path | None = None, hcs_env: dict[str, str] | None = None) -> None:
        self.kind = kind
        self.workdir = workdir
        tag = uuid.uuid4().hex[:8]
        self.sink = f"{prefix}out-{kind}-{tag}"
        self.progress = workdir / f"{kind}-{tag}.progress"
        self.log = workdir / f"{kind}-{tag}.log"
        # None of the caller's HCS_ settings, but the cluster's security when the bench is on one
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("HCS_") or (os.environ.get(SECURE_ENV) and k.startswith(("HCS_KAFKA_", SECURE_ENV)))}
        if kind == "hcs":
            self.port = free_port()
            hcs_prefix = source.removesuffix(topics.SCANS.name)
            env.update(HCS_BOOTSTRAP=bootstrap, HCS_APP_ID=f"bench-hcs-{tag}", HCS_TOPIC_PREFIX=hcs_prefix,
                       HCS_WEB_PORT=str(self.port), HCS_DATA_DIR=str(workdir / f"hcs-{tag}"))
            if policy:
                env["HCS_POLICY_FILE"] = str(policy)
            # The one setting a run may choose: exactly-once (default) or at-least-once, to compare.
            if os.environ.get("HCS_PROCESSING_GUARANTEE"):
                env["HCS_PROCESSING_GUARANTEE"] = os.environ["HCS_PROCESSING_GUARANTEE"]
            env.update(hcs_env or {})  # what a benchmark compares (python -m benchmarks.fetch)
            self.sink = topics.topic_name(topics.DECISIONS, hcs_prefix)
            args = [sys.executable, "-m", "streams", "worker", "-l", "warn"]
        else:
            # benchmarks/ is not installed: the contender finds it from the checkout it runs from.
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHECKOUT), env.get("PYTHONPATH")]))
            args = [sys.executable, "-m", "benchmarks.contenders", kind, "--bootstrap", bootstrap,
                    "--source", source, "--sink", self.sink, "--group", f"bench-{kind}-{tag}",
                    "--progress", str(self.progress)]
        self.bootstrap = bootstrap
        self.source = source
        self.args, self.env = args, env
        self.proc: subprocess.Popen[bytes] | None = None

    def ensure_hcs_topics(self) -> None:
        """The hcs worker's topics, made before it starts (on the caller's cluster, with its security)."""
        from streams.kafka.cluster import ensure_topics
        from streams.settings import Settings

        asyncio.run(ensure_topics(Settings(bootstrap=self.bootstrap, topic_prefix=self.env["HCS_TOPIC_PREFIX"],
                                           kafka=bench_security())))

    def start(self) -> None:
        if self.kind != "hcs":  # hcs creates its own topics
            asyncio.run(_create(self.bootstrap, [self.sink], topics.SCANS.partitions))
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True, preexec_fn=die_with_parent)

    def samples(self) -> list[tuple[float, int]]:
        """(wall time, scans done) as the contender itself recorded them (raw and bare only)."""
        try:
            rows = [orjson.loads(line) for line in self.progress.read_bytes().splitlines()]
        except FileNotFoundError:
            return []
        return [(r["t"], r["n"]) for r in rows if r["n"] > 0]

    def done(self) -> int:
        """Scans done so far (-1 while the process is not ready)."""
        if self.kind == "hcs":
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as resp:
                    text = resp.read().decode()
            except OSError:
                return -1
            return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                           if line.startswith("hcs_scans_total{")))
        try:
            lines = self.progress.read_bytes().splitlines()
        except FileNotFoundError:
            return -1
        return int(orjson.loads(lines[-1])["n"]) if lines else -1

    def cpu_and_rss(self) -> tuple[float, float]:
        assert self.proc is not None
        pid = self.proc.pid
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(stat[11]) + int(stat[12])) / ticks  # utime + stime
        rss_kb = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if line.startswith("VmHWM:"))
        return cpu, rss_kb / 1024

    def discard(self) -> None:
        """Delete the topics this run made for itself alone (raw's and bare's sink; hcs's changelogs
        and internal topics, named after its app id), so that later runs meet a broker without
        them: a broker holding earlier runs' changelogs stalled later runs' transactions more
        often (docs/performance.md). The inputs and hcs's shared topics stay."""
        asyncio.run(_delete(self.bootstrap, self.sink if self.kind != "hcs" else None,
                            self.env["HCS_APP_ID"] if self.kind == "hcs" else None))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def measure(contender: Contender, mode: str, total: int, budget_s: float, log: Callable[[str], None]) -> Run:
    if contender.kind == "hcs":
        contender.ensure_hcs_topics()
    contender.start()
    samples: list[tuple[float, int]] = []
    deadline: float | None = None
    start_wait = time.monotonic()
    try:
        while True:
            time.sleep(0.25)
            n = contender.done()
            now = time.monotonic()
            if n > 0:
                samples.append((time.time(), n))
                if deadline is None:
                    deadline = now + budget_s
            if n >= total or (deadline is not None and now >= deadline):
                break
            if deadline is None and now - start_wait > 120:
                raise RuntimeError(f"{contender.kind} did not start: see {contender.log}")
        cpu, rss = contender.cpu_and_rss()
        time.sleep(0.6)  # the last progress sample of a baseline
    finally:
        contender.stop()
    contender.discard()
    if contender.kind != "hcs":
        samples = contender.samples()
    (t0, n0), (t1, n1) = samples[0], samples[-1]
    # From the first sample on: the work before it (startup, the first fetch) is not counted.
    rate = (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0
    run = Run(contender.kind, mode, n1, round(t1 - t0, 2), round(rate, 1), round(cpu, 2), round(rss, 1))
    log(f"  {mode:<6} {contender.kind:<4} {rate:>9,.0f} scans/s  ({n1:,} scans, cpu {cpu:.1f}s, "
        f"peak rss {rss:.0f} MB)")
    return run


# -- latency ----------------------------------------------------------------------------------------

WARMUP_S = 2.0  # offered load before the measured seconds, the same for every contender


async def committed_reader_at_end(bootstrap: str, partitions: list[Any]) -> Any:
    """A started consumer of ``partitions`` (aiokafka TopicPartitions) at their ends, resolved now,
    before anything is produced; read_committed: an hcs decision counts once its transaction is
    committed (what readers see)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(**client_kwargs(bootstrap), group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:
        await consumer.position(tp)
    return consumer


async def _offered_load(bootstrap: str, source: str, sink: str, rate: float, seconds: float, batch: int,
                        seed: int, warmup_s: float = WARMUP_S) -> list[float]:
    """Produce ``rate`` scans/s for ``warmup_s + seconds`` and return the latency to its decision
    of each scan sent after the warm-up (a contender's first seconds under load are not its
    steady state: hcs's showed stalls of ~100 ms while its state and connections fill in)."""
    from aiokafka import AIOKafkaProducer, TopicPartition

    sim = Simulator(seed=seed, mix=CLEAN)
    consumer = await committed_reader_at_end(bootstrap, [TopicPartition(sink, p)
                                                         for p in range(topics.DECISIONS.partitions)])
    producer = AIOKafkaProducer(**client_kwargs(bootstrap), linger_ms=0)
    await producer.start()
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    warmup = int(rate * warmup_s)
    total = int(rate * seconds)
    measured: set[str] = set()

    async def read() -> None:
        while len(latencies) < total:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                now = time.time()
                for record in records:
                    event_id = orjson.loads(record.value)["event_id"]
                    if event_id in sent_at:
                        sent = sent_at.pop(event_id)
                        if event_id in measured:
                            latencies.append(now - sent)

    reader = asyncio.create_task(read())
    started = time.time()
    produced = 0
    try:
        for key, value, n in sim.records(warmup + total, batch=batch):
            ids = [s["event_id"] for s in scans_in(value)]
            now = time.time()
            for event_id in ids:
                sent_at[event_id] = now
                if produced >= warmup:
                    measured.add(event_id)
            await producer.send(source, value=value, key=key)
            produced += n
            ahead = produced / rate - (time.time() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
        await producer.flush()
        await asyncio.wait_for(reader, timeout=60)
    except TimeoutError:
        reader.cancel()
    finally:
        await consumer.stop()
        await producer.stop()
    return latencies


def scans_in(value: bytes) -> list[dict[str, Any]]:
    doc = orjson.loads(value)
    return list(doc["scans"]) if doc.get("schema") == "hcs.scan-batch.v1" else [doc]


def measure_latency(contender: Contender, mode: str, rate: float, seconds: float, seed: int,
                    log: Callable[[str], None]) -> Latency:
    if contender.kind == "hcs":
        contender.ensure_hcs_topics()
    else:
        asyncio.run(_create(contender.bootstrap, [contender.source], topics.SCANS.partitions))
    contender.start()
    try:
        deadline = time.monotonic() + 120
        while contender.done() < 0 and time.monotonic() < deadline:
            time.sleep(0.25)
        time.sleep(3.0)  # past the first rebalance
        idle_from, _ = contender.cpu_and_rss()
        time.sleep(IDLE_S)
        idle_cpu = (contender.cpu_and_rss()[0] - idle_from) / IDLE_S * 100
        cpu_from, _ = contender.cpu_and_rss()
        load_from = time.monotonic()
        latencies = asyncio.run(_offered_load(contender.bootstrap, contender.source, contender.sink, rate,
                                              seconds, MODES[mode], seed))
        cpu = (contender.cpu_and_rss()[0] - cpu_from) / (time.monotonic() - load_from) * 100
    finally:
        contender.stop()
    contender.discard()
    ms = sorted(x * 1000 for x in latencies) or [float("nan")]
    result = Latency(contender.kind, mode, rate, len(latencies), round(ms[len(ms) // 2], 1),
                     round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1), round(ms[-1], 1), round(cpu, 1),
                     round(idle_cpu, 1))
    log(f"  {mode:<6} {contender.kind:<4} p50 {result.p50_ms:>7.1f} ms  p99 {result.p99_ms:>7.1f} ms  "
        f"max {result.max_ms:>7.1f} ms  cpu {result.cpu_percent:.1f}% (idle {result.idle_cpu_percent:.1f}%)  "
        f"({result.scans:,} scans at {rate:,.0f}/s)")
    return result


# -- the whole benchmark ----------------------------------------------------------------------------

def run_benchmark(bootstrap: str, scans: int, rounds: int, budget_s: float, rate: float, latency_s: float,
                  out: Path, seed: int = 42, log: Callable[[str], None] = print, background_load: int = 0) -> Report:
    workdir = out.parent / "bench-work"
    workdir.mkdir(parents=True, exist_ok=True)
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    report = Report(machine(), scans, rounds, budget_s, background_load)
    preload(bootstrap, prefix, scans, seed, log)
    with neighbours(background_load):  # after the preload: only the measured runs share the machine
        if background_load:
            log(f"{background_load} spinning neighbour process(es) from here to the end")
        _measure_all(report, bootstrap, prefix, workdir, scans, rounds, budget_s, rate, latency_s, seed, log)
    out.write_text(json.dumps({**asdict(report), "summary": report.summary()}, indent=2) + "\n")
    return report


def _measure_all(report: Report, bootstrap: str, prefix: str, workdir: Path, scans: int, rounds: int,
                 budget_s: float, rate: float, latency_s: float, seed: int, log: Callable[[str], None]) -> None:
    for i in range(rounds):
        order = CONTENDERS[i % 3:] + CONTENDERS[: i % 3]  # rotate who goes first
        log(f"round {i + 1}/{rounds}: {' -> '.join(order)}")
        for mode in MODES:
            for kind in order:
                contender = Contender(kind, bootstrap, input_topic(prefix, mode), prefix, workdir)
                report.runs.append(measure(contender, mode, scans, budget_s, log))
    log(f"latency at {rate:,.0f} scans/s offered for {latency_s:.0f}s after a {WARMUP_S:.0f}s warm-up")
    for mode in MODES:
        for kind in ("raw", "hcs"):
            source = input_topic(prefix, f"latency-{mode}-{kind}")
            contender = Contender(kind, bootstrap, source, prefix, workdir)
            report.latencies.append(measure_latency(contender, mode, rate, latency_s, seed + 1, log))
    # What a worker costs at the rate of a quiet district, single-scan records (most devices).
    log(f"cpu at {LOW_RATE:.0f} single scans/s and idle")
    for kind in ("raw", "hcs"):
        source = input_topic(prefix, f"low-rate-{kind}")
        contender = Contender(kind, bootstrap, source, prefix, workdir)
        report.latencies.append(measure_latency(contender, "single", LOW_RATE, latency_s, seed + 2, log))


def table(report: Report) -> str:
    s = report.summary()
    busy = f", {report.background_load} spinning neighbour(s)" if report.background_load else ""
    lines = [f"hcs bench: {report.scans:,} scans, {report.rounds} round(s), {report.machine['cpus']} cpus{busy}, "
             f"python {report.machine['python']}", "",
             f"{'mode':<7}{'raw/s':>10}{'bare/s':>10}{'hcs/s':>10}{'hcs/raw':>9}{'hcs/bare':>10}"
             f"{'cpu s/100k raw|bare|hcs':>28}{'peak MB raw|bare|hcs':>24}"]
    for mode, m in s.items():
        r = m["scans_per_s"]
        cpu = m["cpu_s_per_100k"]
        rss = m["peak_rss_mb"]
        lines.append(
            f"{mode:<7}{r['raw']:>10,.0f}{r['bare']:>10,.0f}{r['hcs']:>10,.0f}{_ratio(m['hcs_over_raw']):>9}"
            f"{_ratio(m['hcs_over_bare']):>10}"
            f"{' | '.join(f'{cpu.get(c, 0):.1f}' for c in CONTENDERS):>28}"
            f"{' | '.join(f'{rss.get(c, 0):.0f}' for c in CONTENDERS):>24}")
    if report.latencies:
        lines += ["", f"{'latency':<14}{'offered/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
                      f"{'cpu %':>8}{'idle %':>8}{'cpu s/100k':>12}"]
        for lat in report.latencies:
            per_100k = lat.cpu_percent / 100 / lat.offered_scans_per_s * 100_000 if lat.offered_scans_per_s else 0
            lines.append(f"{lat.mode + ' ' + lat.contender:<14}{lat.offered_scans_per_s:>10,.0f}{lat.p50_ms:>9.1f}"
                         f"{lat.p99_ms:>9.1f}{lat.max_ms:>9.1f}{lat.cpu_percent:>8.1f}{lat.idle_cpu_percent:>8.1f}"
                         f"{per_100k:>12.1f}")
    return "\n".join(lines)


def _ratio(x: float | None) -> str:
    return f"{x:.2f}" if x is not None else "-"


@click.command()
@click.option("--scans", type=int, default=500_000, show_default=True, help="Scans preloaded (each mode).")
@click.option("--rounds", type=int, default=3, show_default=True, help="Rounds; contenders rotate each round.")
@click.option("--budget", type=float, default=12.0, show_default=True, help="Seconds measured per run at most.")
@click.option("--rate", type=float, default=2000.0, show_default=True, help="Offered load for latency, scans/s.")
@click.option("--latency-seconds", type=float, default=10.0, show_default=True, help="Length of the latency run.")
@click.option("--background-load", type=click.IntRange(0, 64), default=0, show_default=True,
              help="Processes spinning a core each while the contenders are measured: a busy machine, on purpose.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench-results/bench.json"), show_default=True)
def main(scans: int, rounds: int, budget: float, rate: float, latency_seconds: float, background_load: int,
         out: Path) -> None:
    """Benchmark hcs against a raw aiokafka loop and a bare Faust agent on a real broker."""

    out.parent.mkdir(parents=True, exist_ok=True)
    kafka = None
    bootstrap = os.environ.get(ENV_BOOTSTRAP)
    if bootstrap:  # the caller's cluster, with its HCS_KAFKA_* security (checked now: one line if wrong)
        try:
            Settings.from_env().client_kwargs()
        except HcsError as exc:
            _fail(exc)
        os.environ[SECURE_ENV] = "1"
    finished = False
    try:
        if not bootstrap:
            kafka = LocalKafka(Path(tempfile.mkdtemp(prefix="hcs-bench-")), heap="1g", owned=True)
            bootstrap = kafka.start(port=free_port()).bootstrap or ""
            click.echo(f"local broker at {bootstrap}", err=True)
        report = run_benchmark(bootstrap, scans, rounds, budget, rate, latency_seconds, out,
                               log=lambda line: click.echo(line, err=True), background_load=background_load)
        finished = True
    except HcsError as exc:
        _fail(exc)
    finally:
        if kafka is not None:
            kafka.stop()
            # The broker's data (~2 GB for 500,000 scans) goes; its logs stay if the run failed.
            shutil.rmtree(kafka.state_dir if finished else kafka.state_dir / "data", ignore_errors=True)
            if not finished:
                click.echo(f"broker logs kept in {kafka.state_dir / 'logs'}", err=True)
    click.echo(table(report))
    click.echo(f"\nwritten: {out}")


def _fail(exc: Exception | str) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


if __name__ == "__main__":
    main()
