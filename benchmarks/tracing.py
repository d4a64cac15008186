"""Visits on disk, measured: ``python -m benchmarks.tracing --visits 10000000``.

Writes ``--visits`` visits into one worker's visit store (:class:`streams.kafka.visits.VisitStore`,
RocksDB, spread over the 8 venue partitions as the scan path writes them: a batch per partition
per flush) and reports: visits stored per second, bytes per visit on disk once RocksDB has
flushed and compacted, the process's resident memory, and the store-side cost of a trace — a
case with ~20 visits among them: its own visits by the person index, then everyone at each of
its venues in an overlapping time, and the contacts by the overlap rule (``streams.rules.tracing``).
No Kafka: this is the store's cost; the scan path's is in ``hcs bench``.
"""

from __future__ import annotations

import random
import resource
import shutil
import tempfile
import time
from pathlib import Path

import click
import faust

from streams.contract import topics
from streams.kafka.visits import VisitStore
from streams.rules import tracing
from streams.rules.tracing import DAY_S, Visit

DWELL_S = {"mall": 90 * 60, "school": 480 * 60, "supermarket": 45 * 60, "office": 480 * 60, "transport_hub": 3600}


def open_store(data_dir: Path) -> VisitStore:
    app = faust.App("tracing-bench", store="memory://", datadir=str(data_dir), autodiscover=False)
    app.finalize()
    table = app.Table("visits", partitions=topics.SCANS.partitions, key_type=str, store="hcs-visits:visits")
    store = table.data
    assert isinstance(store, VisitStore)
    return store


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@click.command()
@click.option("--visits", "count", default=10_000_000, show_default=True, help="Visits stored.")
@click.option("--venues", default=20_000, show_default=True)
@click.option("--people", default=2_000_000, show_default=True)
@click.option("--flush", default=2_000, show_default=True, help="Visits per write (a flush of the scan path).")
@click.option("--seed", default=7, show_default=True)
def main(count: int, venues: int, people: int, flush: int, seed: int) -> None:
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="hcs-tracing-"))
    now = time.time()
    start = now - 14 * DAY_S
    venue_types = list(DWELL_S)
    kinds = [venue_types[i % len(venue_types)] for i in range(venues)]
    try:
        store = open_store(work)
        store.kept_since = lambda: now - 14 * DAY_S
        partitions = topics.SCANS.partitions
        pending: dict[int, list[Visit]] = {}
        began = time.perf_counter()
        t = start
        step = 14 * DAY_S / count
        for i in range(count):
            venue = rng.randrange(venues)
            t += step
            visit = Visit(f"venue-{venue:06d}", int(t), f"ev-{i:012d}", f"{rng.randrange(people):032x}",
                          int(t) + DWELL_S[kinds[venue]])
            batch = pending.setdefault(venue % partitions, [])
            batch.append(visit)
            if len(batch) >= flush:
                store.put(venue % partitions, batch)
                pending[venue % partitions] = []
        for partition, batch in pending.items():
            store.put(partition, batch)
        took = time.perf_counter() - began
        click.echo(f"stored {count:,} visits in {took:.1f} s: {count / took:,.0f} visits/s "
                   f"(batches of {flush:,} per partition, the scan path's flush)")

        # The case: ~20 visits at a few venues in the last days, among everything stored.
        case, case_venues = "c" * 32, [f"venue-{rng.randrange(venues):06d}" for _ in range(5)]
        case_visits = []
        for k in range(20):
            place = case_venues[k % len(case_venues)]
            at = int(now - rng.uniform(0.5, 4) * DAY_S)
            case_visits.append(Visit(place, at, f"case-{k}", case, at + 90 * 60))
            # ... and people with it: 3 per visit, at an overlapping time.
            store.put(int(place[-6:]) % partitions, [Visit(place, at + 60 * j, f"with-{k}-{j}", f"{k:02d}{j:030x}",
                                                            at + 60 * j + 3600) for j in range(1, 4)])
        for visit in case_visits:
            store.put(int(visit.venue_id[-6:]) % partitions, [visit])

        for db in store._dbs.values():  # what stays on disk: memtables flushed, levels compacted
            db.flush()
            db.compact_range(None, None)
        size = dir_bytes(work)
        click.echo(f"on disk: {size / 2**20:,.0f} MiB, {size / count:.0f} bytes per visit (3 keys each); "
                   f"process RSS {rss_mib():,.0f} MiB")

        timings = []
        for _ in range(5):
            began = time.perf_counter()
            window = tracing.trace_window(now - DAY_S, None, now, 4)
            contacts: dict[tuple[str, str], tracing.Contact] = {}
            visits_read = 0
            for partition in range(partitions):
                own = list(store.of_person(partition, case, *window))
                by_venue: dict[str, list[tuple[float, float]]] = {}
                for visit in own:
                    by_venue.setdefault(visit.venue_id, []).append((visit.start, visit.end))
                for place, spans in by_venue.items():
                    lo = min(s for s, _ in spans) - 720 * 60
                    hi = max(e for _, e in spans)
                    others = [(v.person_ref, (float(v.start), float(v.end)))
                              for v in store.at_venue(partition, place, lo, hi)]
                    visits_read += len(others)
                    for person, contact in tracing.contacts_at_venue(spans, others, case, 600).items():
                        contacts[(person, place)] = contact
            timings.append(time.perf_counter() - began)
        click.echo(f"trace of a case with {len(case_visits)} visits at {len(case_venues)} venues among {count:,}: "
                   f"{len(contacts)} contacts from {visits_read:,} visits read, "
                   f"{min(timings) * 1000:.1f} ms (best of 5; first {timings[0] * 1000:.1f} ms)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
