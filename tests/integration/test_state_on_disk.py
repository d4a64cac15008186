"""The worker's tables on disk (HCS_TABLE_STORE=rocksdb, the default): a restart that keeps its
data dir loads its state from disk and reads no changelog it already holds; what it knew holds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streams.contract import topics
from tests import factories as f
from tests.integration.kafka_io import WorkerProcess, create_topics, name, produce, read

pytestmark = pytest.mark.integration

LOADED = re.compile(r"table seen partition \d+: (\d+) keys loaded from disk")


def test_a_restart_with_its_data_dir_loads_its_state_from_disk_and_still_knows_every_scan_it_judged(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    scans = [f.scan(venue_id=f"venue-{i % 9}", checkpoint_id=f"venue-{i % 9}-gate") for i in range(200)]
    records = [(s["venue_id"].encode(), f.encode(s)) for s in scans]
    scans_topic, decisions_topic = name(topics.SCANS, topic_prefix), name(topics.DECISIONS, topic_prefix)
    produce(kafka_bootstrap, scans_topic, records)
    first = WorkerProcess(worker_env, tmp_path / "worker-1.log").start()
    try:
        read(kafka_bootstrap, decisions_topic, lambda v: len(v) >= 200, timeout_s=60)
    finally:
        first.stop()
    assert list((tmp_path / "data").rglob("seen-*.db")), "no table database on disk"

    later = [f.scan(venue_id="venue-1", checkpoint_id="venue-1-gate") for _ in range(20)]
    # Every scan again (a gateway that re-sent its whole day), then 20 new ones.
    produce(kafka_bootstrap, scans_topic, records + [(b"venue-1", f.encode(s)) for s in later])
    second = WorkerProcess(worker_env, tmp_path / "worker-2.log").start()
    try:
        decisions = read(kafka_bootstrap, decisions_topic, lambda v: len(v) >= 220, timeout_s=60, settle_s=3)
    finally:
        second.stop()
    log = (tmp_path / "worker-2.log").read_text(errors="replace")
    assert sum(int(n) for n in LOADED.findall(log)) == 200, log[-3000:]  # a dedup mark per scan judged
    assert "recovering tables from their changelogs" not in log  # nothing to read: the disk had it all
    assert sorted(d["event_id"] for d in decisions) == sorted(s["event_id"] for s in scans + later)
