"""Visits on disk, measured: ``python -m benchmarks.tracing --visits 10000000 [--e2e]``.

Writes ``--visits`` visits into one worker's visit store (:class:`streams.kafka.visits.VisitStore`,
RocksDB, spread over the 8 venue partitions as the scan path writes them: a batch per partition
per flush) and reports: visits stored per second, bytes per visit on disk once RocksDB has
flushed and compacted, the process's resident memory, and the store-side cost of a trace — a
case with ~20 visits among them: its own visits by the person index, then everyone at each of
its venues in an overlapping time, and the contacts by the overlap rule (``streams.rules.tracing``).
No Kafka: this is the store's cost; the scan path's is in ``hcs bench``.

With ``--e2e``, the visits are written into a real worker's own visit store (its data dir), that
worker is started on a local broker (or ``HCS_BOOTSTRAP``), and the time is measured from a case
record produced to ``hcs.cases.v1`` to its Trace ``complete`` read on ``hcs.traces.v1`` — the
whole path: the view, the trace on every partition, the reports, the Trace — with the worker's
resident memory.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import click
import faust
import orjson

from benchmarks.run import worker_ready
from streams.contract import topics
from streams.kafka.output import partition_for
from streams.kafka.visits import VisitStore
from streams.rules import tracing
from streams.rules.tracing import DAY_S, Visit
from streams.settings import Settings
from streams.times import rfc3339

DWELL_S = {"mall": 90 * 60, "school": 480 * 60, "supermarket": 45 * 60, "office": 480 * 60, "transport_hub": 3600}
CASE = "c" * 32


def open_store(data_dir: Path) -> VisitStore:
    app = faust.App("tracing-bench", store="memory://", datadir=str(data_dir), autodiscover=False)
    app.finalize()
    table = app.Table("visits", partitions=topics.SCANS.partitions, key_type=str, store="hcs-visits:visits")
    store = table.data
    assert isinstance(store, VisitStore)
    return store


def worker_store(settings: Settings) -> VisitStore:
    """The visit store a worker of ``settings`` opens (its data dir, its app id)."""
    from streams.worker.app import create_app

    app = create_app(settings)
    app.finalize()
    visits = app.wiring.visits
    assert visits is not None
    store = visits.log
    assert isinstance(store, VisitStore)
    return store


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def rss_mib(pid: str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fill(store: VisitStore, count: int, venues: int, people: int, flush: int, seed: int, now: float) -> list[Visit]:
    """``count`` visits over the last 14 days, then a case's ~20 visits at 5 venues in the last
    4 days with 3 people beside each; returns the case's visits."""
    rng = random.Random(seed)
    kinds = [list(DWELL_S)[i % len(DWELL_S)] for i in range(venues)]
    names = [f"venue-{v:06d}" for v in range(venues)]
    partition_of = [partition_for(name.encode(), topics.SCANS.partitions) for name in names]
    pending: dict[int, list[Visit]] = {}
    began, t, step = time.perf_counter(), now - 14 * DAY_S, 14 * DAY_S / max(count, 1)
    for i in range(count):
        venue = rng.randrange(venues)
        t += step
        batch = pending.setdefault(partition_of[venue], [])
        batch.append(Visit(names[venue], int(t), f"ev-{i:012d}", f"{rng.randrange(people):032x}",
                           int(t) + DWELL_S[kinds[venue]]))
        if len(batch) >= flush:
            store.put(partition_of[venue], batch)
            pending[partition_of[venue]] = []
    for partition, batch in pending.items():
        store.put(partition, batch)
    took = time.perf_counter() - began
    click.echo(f"stored {count:,} visits in {took:.1f} s: {count / took:,.0f} visits/s "
               f"(batches of {flush:,} per partition, the scan path's flush)")
    case_venues = [rng.randrange(venues) for _ in range(5)]
    case_visits = []
    for k in range(20):
        venue = case_venues[k % len(case_venues)]
        at = int(now - rng.uniform(0.5, 3.5) * DAY_S)
        case_visits.append(Visit(names[venue], at, f"case-{k}", CASE, at + DWELL_S[kinds[venue]]))
        store.put(partition_of[venue], [Visit(names[venue], at + 60 * j, f"with-{k}-{j}", f"{k:02d}{j:030x}",
                                              at + 60 * j + 3600) for j in range(1, 4)])
    for visit in case_visits:
        store.put(partition_for(visit.venue_id.encode(), topics.SCANS.partitions), [visit])
    return case_visits


def compact(store: VisitStore) -> None:
    for db in store._dbs.values():  # what stays on disk: memtables flushed, levels compacted
        db.flush()
        db.compact_range(None, None)


def trace_in_store(store: VisitStore, now: float) -> tuple[int, int, float]:
    """The store-side trace of the case: (contacts, visits read, seconds)."""
    began = time.perf_counter()
    window = tracing.trace_window(now - DAY_S, None, now, 4)
    contacts: set[tuple[str, str]] = set()
    read = 0
    for partition in range(topics.SCANS.partitions):
        by_venue: dict[str, list[tuple[float, float]]] = {}
        for visit in store.of_person(partition, CASE, *window):
            by_venue.setdefault(visit.venue_id, []).append((visit.start, visit.end))
        for place, spans in by_venue.items():
            low, high = min(s for s, _ in spans) - 1440 * 60, max(e for _, e in spans)
            others = [(v.person_ref, (float(v.start), float(v.end)))
                      for v in store.at_venue(partition, place, low, high)]
            read += len(others)
            contacts |= {(p, place) for p in tracing.contacts_at_venue(spans, others, CASE, 600)}
    return len(contacts), read, time.perf_counter() - began


@click.command()
@click.option("--visits", "count", default=10_000_000, show_default=True, help="Visits stored.")
@click.option("--venues", default=20_000, show_default=True)
@click.option("--people", default=2_000_000, show_default=True)
@click.option("--flush", default=2_000, show_default=True, help="Visits per write (a flush of the scan path).")
@click.option("--seed", default=7, show_default=True)
@click.option("--e2e", is_flag=True, help="Also a real worker on those visits: case record -> Trace complete.")
def main(count: int, venues: int, people: int, flush: int, seed: int, e2e: bool) -> None:
    work = Path(tempfile.mkdtemp(prefix="hcs-tracing-"))
    now = time.time()
    try:
        if e2e:
            _end_to_end(work, count, venues, people, flush, seed, now)
            return
        store = open_store(work)
        store.kept_since = lambda: now - 14 * DAY_S
        case_visits = fill(store, count, venues, people, flush, seed, now)
        compact(store)
        size = dir_bytes(work)
        click.echo(f"on disk: {size / 2**20:,.0f} MiB, {size / count:.0f} bytes per visit (3 keys each); "
                   f"process RSS {rss_mib():,.0f} MiB")
        runs = [trace_in_store(store, now) for _ in range(5)]
        contacts, read, _ = runs[0]
        click.echo(f"trace of a case with {len(case_visits)} visits among {count:,}: {contacts} contacts from "
                   f"{read:,} visits read, {min(r[2] for r in runs) * 1000:.1f} ms (best of 5; first "
                   f"{runs[0][2] * 1000:.1f} ms)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _end_to_end(work: Path, count: int, venues: int, people: int, flush: int, seed: int, now: float) -> None:
    from streams.dev.localkafka import LocalKafka, free_port
    from streams.kafka.cluster import ensure_topics

    kafka = None
    bootstrap = os.environ.get("HCS_BOOTSTRAP")
    if not bootstrap:
        kafka = LocalKafka(work / "broker", heap="1g", owned=True)
        bootstrap = kafka.start(port=free_port()).bootstrap or ""
    app_id = f"tracing-{uuid.uuid4().hex[:8]}"
    settings = Settings(bootstrap=bootstrap, app_id=app_id, data_dir=work / "worker-data")
    try:
        asyncio.run(ensure_topics(settings))
        store = worker_store(settings)
        fill(store, count, venues, people, flush, seed, now)
        compact(store)
        for db in store._dbs.values():
            db.close()  # the worker opens them
        store._dbs.clear()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HCS_")}
        env.update(HCS_BOOTSTRAP=bootstrap, HCS_APP_ID=app_id, HCS_WEB_PORT=str(free_port()),
                   HCS_DATA_DIR=str(settings.data_dir))
        log = work / "worker.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "streams", "worker", "-l", "info"], env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait(lambda: worker_ready(env["HCS_WEB_PORT"]), 300, proc, log)
            case: dict[str, object] = {"schema": "hcs.case.v1", "event_id": app_id, "case_id": app_id,
                                       "person_ref": CASE,
                                       "district": "330106", "classification": "confirmed",
                                       "sampled_at": rfc3339(now - DAY_S), "onset_at": None,
                                       "reported_at": rfc3339(now)}
            took, trace = asyncio.run(_time_trace(bootstrap, case))
            click.echo(f"case record -> Trace complete in {took:.2f} s with {count:,} visits stored on the worker "
                       f"({trace['visits']} visits at {trace['venues']} venues, {trace['contacts']} contacts); "
                       f"worker RSS {rss_mib(str(proc.pid)):,.0f} MiB")
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)
    finally:
        if kafka is not None:
            kafka.stop()


def _wait(condition: Callable[[], bool], timeout_s: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise click.ClickException(f"the worker is not ready: see {log}")
        time.sleep(0.2)


async def _time_trace(bootstrap: str, case: dict[str, object]) -> tuple[float, dict[str, object]]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    consumer = AIOKafkaConsumer(topics.TRACES.name, bootstrap_servers=bootstrap, auto_offset_reset="latest",
                                isolation_level="read_committed")
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await consumer.getmany(timeout_ms=500)  # assigned, at the end
        started = time.monotonic()
        await producer.send_and_wait(topics.CASES.name, orjson.dumps(case), key=str(case["person_ref"]).encode())
        while time.monotonic() - started < 120:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    trace = orjson.loads(record.value or b"{}")
                    if trace.get("case_id") == case["case_id"] and trace.get("status") == "complete":
                        return time.monotonic() - started, trace
        raise click.ClickException("no complete trace in 120 s")
    finally:
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    main()
