"""What one timer tick costs as the state grows: ``python -m benchmarks.timers``.

Fills a worker's tables as a long run would (alert memos and dedup marks by the 100,000 or
million, a few thousand live checkpoints, compliance windows and open rechecks), then times the
1-second tick (close windows, check silence, close minutes), the 5-second one (expire rechecks)
and the 60-second sweep, each on state where nothing is due, which is what nearly every tick sees.
"""

from __future__ import annotations

import time
from datetime import timedelta

import click

from streams.metrics import Metrics
from streams.rules.alerts import AlertMemo
from streams.settings import Settings
from streams.times import SHANGHAI
from streams.worker.app import create_app

LIVE = 2_000  # checkpoints with a status and an open window; open rechecks


def fill(memos: int, marks: int) -> tuple[object, float]:
    """An app whose state holds ``memos`` alert memos, ``marks`` dedup marks and :data:`LIVE`
    of everything else, none of it due; returns it with the wall time its ticks are run at."""
    from datetime import datetime

    app = create_app(Settings(app_id="timers-bench"), metrics=Metrics())
    pipeline = app.pipeline
    now = time.time()
    state, seen = pipeline.state, pipeline.seen
    for i in range(memos):
        state.set(f"a|KEY_PERSON_DETECTED|{i:064x}|venue-{i % 500}",
                  AlertMemo(now - 60, 0, now - 60, now - 60, ()).to_json(), i % 8)
    seen.claim([f"e|event-{i}" for i in range(marks)], now + 48 * 3600, 0)
    start = datetime.fromtimestamp(now, SHANGHAI) - timedelta(seconds=30)
    for i in range(LIVE):
        partition = i % 8
        t = start.timestamp()
        state.set(f"c|cp-{i}", {"seen": t, "heard": now, "silent": False, "district": "330106",
                                "venue_id": f"venue-{i}", "venue_type": "mall"}, partition)
        state.set(f"w|cp-{i}|{t // 600 * 600}", {"district": "330106", "venue_id": f"venue-{i}",
                                                  "venue_type": "mall", "start": t // 600 * 600,
                                                  "end": t // 600 * 600 + 600, "close": now + 3600,
                                                  "version": "default-v1", "counts": [0, 0, 0, 0, 0, 0]},
                  partition)
        state.set(f"f|venue-{i}|{i:064x}", {"opened": t, "due": now + 3600, "event_id": f"ev-{i}",
                                              "checkpoint_id": f"cp-{i}", "district": "330106",
                                              "venue_type": "mall", "policy_version": "default-v1"}, partition)
        pipeline.clock.observe(partition, t, now)
        pipeline.uploads.observe(partition, now, now)
    state.flush = lambda: 0  # type: ignore[method-assign]  # no changelog here
    seen.flush = lambda: 0  # type: ignore[method-assign]
    if hasattr(state, "reindex"):
        state.reindex()  # as after a recovery: the first tick builds the indexes
    return app, now


def timed(job: object, now: float, rounds: int) -> float:
    """Median milliseconds of ``rounds`` calls of ``job(now)``."""
    took = []
    for _ in range(rounds):
        started = time.perf_counter()
        job(now)  # type: ignore[operator]
        took.append((time.perf_counter() - started) * 1000)
    return sorted(took)[len(took) // 2]


@click.command()
@click.option("--sizes", default="100000,1000000", show_default=True, help="Alert memos and dedup marks, each.")
@click.option("--rounds", default=7, show_default=True)
def main(sizes: str, rounds: int) -> None:
    for size in (int(n) for n in sizes.split(",")):
        app, now = fill(size, size)
        p = app.pipeline  # type: ignore[attr-defined]
        p.close_windows(now), p.check_silent(now), p.close_minutes(now), p.expire_rechecks(now)  # warm
        window_tick = timed(lambda t, p=p: (p.close_windows(t), p.check_silent(t), p.close_minutes(t)), now, rounds)
        recheck_tick = timed(p.expire_rechecks, now, rounds)
        sweep = timed(p.sweep, now, rounds)
        print(f"{size:,} alert memos + {size:,} dedup marks, {LIVE:,} checkpoints/windows/rechecks: "
              f"1 s tick {window_tick:.1f} ms, 5 s tick {recheck_tick:.1f} ms, sweep {sweep:.1f} ms")


if __name__ == "__main__":
    main()
