"""Fault drill: a worker killed with SIGKILL again and again while it decides a stream.

Each restart recovers the state its predecessor made durable and reads again what was not
committed. With at-least-once plus dedup, outputs acknowledged just before a kill whose dedup
marks were not yet written were sent a second time (20-44 second decisions per 20,000 scans
over four kills, and a re-sent alert). In exactly-once mode (the default) a write's outputs
and state are one Kafka transaction: the drill asserts every scan is decided exactly once.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from streams.contract import topics
from streams.contract.codec import decode_scans
from streams.contract.models import Rejected, ScanEvent
from streams.dev.simulate import Simulator
from tests import factories as f
from tests.integration.kafka_io import WorkerProcess, create_topics, name, produce, read

pytestmark = [pytest.mark.integration, pytest.mark.drill]

SCANS = 16_000
RATE = 250  # scans/s offered while the worker is killed and restarted: the kills land mid-stream
KILLS = 4


def scans_decided(worker: WorkerProcess) -> float:
    """What this worker process decided so far (its own counter, from /metrics)."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in worker.metrics_text().splitlines()
               if line.startswith("hcs_scans_total{"))


def test_repeated_sigkills_mid_stream_decide_every_scan_exactly_once(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    sim = Simulator(seed=23, venues_per_district=4, people=400)
    clock = (f.T0 + timedelta(seconds=i // 4) for i in range(10**9))
    records = [(key, value) for key, value, _ in sim.records(SCANS, batch=1, clock=clock)]
    items = [item for _, value in records for item in decode_scans(value)]
    expected = {item.event_id for item in items if isinstance(item, ScanEvent)}
    bad = sum(1 for item in items if isinstance(item, Rejected))
    decisions_topic = name(topics.DECISIONS, topic_prefix)

    def offer() -> None:
        for i in range(0, len(records), RATE // 10):
            produce(kafka_bootstrap, name(topics.SCANS, topic_prefix), records[i:i + RATE // 10])
            time.sleep(0.1)

    producer = threading.Thread(target=offer, daemon=True)
    producer.start()
    rng = random.Random(7)
    kills = []
    for n in range(KILLS):
        worker = WorkerProcess(worker_env, tmp_path / f"worker-{n}.log").start()
        deadline = time.monotonic() + 60
        while scans_decided(worker) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # until the restarted worker began deciding
        delay = rng.uniform(1, 4)
        time.sleep(delay)
        kills.append((round(delay, 1), int(scans_decided(worker)), producer.is_alive()))
        worker.stop(signal.SIGKILL)
    producer.join()
    last = WorkerProcess(worker_env, tmp_path / "worker-last.log").start()
    try:
        decisions = read(kafka_bootstrap, decisions_topic, lambda v: expected <= {d["event_id"] for d in v},
                         timeout_s=180, settle_s=3)
        alerts = read(kafka_bootstrap, name(topics.ALERTS, topic_prefix), lambda v: False, timeout_s=3)
        dead = read(kafka_bootstrap, name(topics.DLQ, topic_prefix), lambda v: len(v) >= bad, settle_s=2)
        metrics = last.metrics_text()
    finally:
        last.stop()

    decided = Counter(d["event_id"] for d in decisions)
    repeated = {k: n for k, n in decided.items() if n > 1}
    alert_ids = Counter(a["alert_id"] for a in alerts)
    print(f"kills (seconds after deciding began, scans the killed worker decided, mid-stream): {kills}; "
          f"{len(decisions)} decisions for {len(expected)} scans, {sum(n - 1 for n in repeated.values())} repeated; "
          f"{len(alerts)} alerts, {sum(n - 1 for n in alert_ids.values())} re-sent")
    assert sum(offered for *_, offered in kills) >= KILLS - 1  # killed mid-stream, not after it
    assert set(decided) == expected  # nothing lost
    assert not repeated  # nothing decided twice
    assert alerts and max(alert_ids.values()) == 1  # no alert re-sent
    assert len(dead) == bad and len({(d["partition"], d["offset"]) for d in dead}) == bad
    assert "hcs_processing_errors_total{" not in metrics
