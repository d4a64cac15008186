"""What one timer tick costs as the state grows: ``python -m benchmarks.timers``.

Fills a worker's tables as a long run would (alert memos and dedup marks by the 100,000 or
million, and ``--live`` checkpoints, compliance windows, open rechecks, live findings and
isolation points), then times the 1-second tick (close windows, check silence, close minutes,
close isolation days), the 5-second one (expire rechecks), the 10-second one (findings) and the
60-second sweep, each on state where nothing is due, which is what nearly every tick sees. The
first tick after a start or a recovery builds the due-time indexes: timed apart ("first").
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import timedelta

import click

from streams.metrics import Metrics
from streams.rules.alerts import AlertMemo
from streams.settings import Settings
from streams.times import SHANGHAI
from streams.worker.app import create_app
from streams.worker.wiring import Wiring


def fill(memos: int, marks: int, live: int) -> tuple[object, float]:
    """An app whose state holds ``memos`` alert memos, ``marks`` dedup marks and ``live`` of
    everything else, none of it due; returns it with the wall time its ticks are run at."""
    from datetime import datetime

    app = create_app(Settings(app_id="timers-bench"), metrics=Metrics())
    wiring = app.wiring
    wiring.is_active = lambda partition: True  # as if the group gave this worker every partition
    now = time.time()
    state, seen = wiring.state, wiring.seen
    for i in range(memos):
        state.set(f"a|KEY_PERSON_DETECTED|{i:064x}|venue-{i % 500}",
                  AlertMemo(now - 60, 0, now - 60, now - 60, ()), i % 8)
    seen.claim([f"e|event-{i}" for i in range(marks)], now + 48 * 3600, 0)
    start = datetime.fromtimestamp(now, SHANGHAI) - timedelta(seconds=30)
    for i in range(live):
        partition = i % 8
        t = start.timestamp()
        state.set(f"c|cp-{i}", {"seen": t, "heard": now, "silent": False, "district": "330106",
                                "venue_id": f"venue-{i}", "venue_type": "mall"}, partition)
        state.set(f"w|cp-{i}|{t // 600 * 600}", {"district": "330106", "venue_id": f"venue-{i}",
                                                  "venue_type": "mall", "start": t // 600 * 600,
                                                  "end": t // 600 * 600 + 600, "close": now + 3600,
                                                  "version": "default-v1", "counts": [0, 0, 0, 0, False]},
                  partition)
        state.set(f"f|venue-{i}|{i:064x}", {"opened": t, "due": now + 3600, "event_id": f"ev-{i}",
                                              "checkpoint_id": f"cp-{i}", "district": "330106",
                                              "venue_type": "mall", "policy_version": "default-v1"}, partition)
        state.set(f"s|venue-{i}|finding-{i}", {
            "finding_id": f"finding-{i}", "venue_id": f"venue-{i}", "venue_type": "mall", "district": "330106",
            "problem": "MASK", "source": "inspection", "status": "OPEN", "repeat_count": 0, "deadline": now + 86400,
            "overdue": False, "look_back_at": None, "opened_at": t, "updated_at": t, "history": [["open", t]]},
            partition)
        if i % 100 == 0:
            state.set(f"p|point-{i}", {"district": "330106", "next": int(t // 86400) + 1, "days": {}, "late": 0},
                      partition)
        wiring.clock.observe(partition, t, now)
        wiring.uploads.observe(partition, now, now)
    state.flush = lambda: 0  # type: ignore[method-assign]  # no changelog here
    seen.flush = lambda: 0  # type: ignore[method-assign]
    if hasattr(state, "reindex"):
        state.reindex()  # as after a recovery: the first tick builds the indexes
    return app, now


def timed(job: Callable[[float], object], now: float, rounds: int) -> float:
    """Median milliseconds of ``rounds`` calls of ``job(now)``."""
    took = []
    for _ in range(rounds):
        started = time.perf_counter()
        job(now)
        took.append((time.perf_counter() - started) * 1000)
    return sorted(took)[len(took) // 2]


@click.command()
@click.option("--sizes", default="100000,1000000", show_default=True, help="Alert memos and dedup marks, each.")
@click.option("--live", default="2000,1000000", show_default=True,
              help="Live windows, checkpoints, rechecks and findings, each (one isolation point per 100).")
@click.option("--rounds", default=7, show_default=True)
def main(sizes: str, live: str, rounds: int) -> None:
    for size, n in zip((int(x) for x in sizes.split(",")), (int(x) for x in live.split(",")), strict=True):
        app, now = fill(size, size, n)
        wiring: Wiring = app.wiring  # type: ignore[attr-defined]
        ticks = {every_s: functools.partial(wiring.tick, every_s) for every_s in wiring.timers()}
        started = time.perf_counter()
        for job in ticks.values():
            job(now)  # the first ticks build the due-time indexes
        first = (time.perf_counter() - started) * 1000
        window_tick, recheck_tick, finding_tick, sweep = (timed(ticks[s], now, rounds) for s in (1.0, 5.0, 10.0, 60.0))
        print(f"{size:,} alert memos + {size:,} dedup marks, {n:,} live windows/checkpoints/rechecks/findings, "
              f"nothing due: 1 s tick {window_tick:.3f} ms, 5 s tick {recheck_tick:.3f} ms, "
              f"10 s tick {finding_tick:.3f} ms, sweep {sweep:.1f} ms (first ticks, indexes built: {first:.0f} ms)")


if __name__ == "__main__":
    main()
