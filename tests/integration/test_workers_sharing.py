"""Two ``hcs worker`` processes of one app id share the stream: a second joins mid-stream and
leaves again, so the first gives up half its partitions and takes them back. Every scan is
decided exactly once and the district statistics add up."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.contract import topics
from streams.dev.localkafka import free_port
from tests import factories as f
from tests.integration.kafka_io import WorkerProcess, create_topics, name, produce, read

pytestmark = pytest.mark.integration

SCANS = 3000
CHUNKS = 30


def scans_by_district(stats: list[dict[str, Any]]) -> Counter[str]:
    out = Counter[str]()
    for record in stats:
        out[record["district"]] += record["scans"]
    return out


def test_a_worker_joining_and_leaving_mid_stream_loses_and_repeats_nothing(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    policy = f.policy_file(tmp_path, "shared", compliance_grace_seconds=1, silent_after_minutes=100)
    create_topics(kafka_bootstrap, topic_prefix)
    # One minute of event time, two minutes ago: not late, and each partition's part of it is
    # added to by the first worker, then the second, then the first again.
    start = datetime.fromtimestamp(math.floor(time.time() / 60) * 60 - 120, f.SHANGHAI)
    sent = [f.scan(venue_id=f"venue-{i % 40}", checkpoint_id=f"venue-{i % 40}-cp",
                   district="330106" if i % 40 < 25 else "330110", at=start + timedelta(seconds=59 * i / SCANS))
            for i in range(SCANS)]
    expected = Counter(s["district"] for s in sent)
    env = {**worker_env, "HCS_POLICY_FILE": str(policy)}
    first = WorkerProcess(env, tmp_path / "first.log").start()
    second = WorkerProcess({**env, "HCS_WEB_PORT": str(free_port()), "HCS_DATA_DIR": str(tmp_path / "second")},
                           tmp_path / "second.log")

    def feed() -> None:  # about 15 s of scans while the group changes
        step = SCANS // CHUNKS
        for i in range(0, SCANS, step):
            produce(kafka_bootstrap, name(topics.SCANS, topic_prefix),
                    [(s["venue_id"].encode(), f.encode(s)) for s in sent[i:i + step]])
            time.sleep(0.5)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        second.start()  # joins the group: the first worker gives up half its partitions
        time.sleep(3)
        assert second.stop() == 0  # leaves: the first worker takes them back
        feeder.join()

        stats = read(kafka_bootstrap, name(topics.DISTRICT_STATS, topic_prefix),
                     lambda records: scans_by_district(records) == expected, timeout_s=120, settle_s=3)
        decisions = read(kafka_bootstrap, name(topics.DECISIONS, topic_prefix), lambda v: len(v) >= SCANS,
                         settle_s=3)
    finally:
        feeder.join()
        first.stop()
        second.stop()

    assert Counter(d["event_id"] for d in decisions) == Counter(s["event_id"] for s in sent)  # each once
    assert len({(r["district"], r["window_start"]) for r in stats}) == len(stats)  # one record per district-minute
    assert scans_by_district(stats) == expected
    assert sum(r["late"] for r in stats) == 0
