"""A standby replica holds every record of its changelog partitions: a second worker that joins
keeps a warm copy of the first one's partitions (``HCS_STANDBY_REPLICAS=1``) from their first
record on. It once lacked the records written before it joined (Faust dropped those fetched while
it sought the streams), and a worker promoted from it judged again scans already decided. (The
drop depended on a fetch landing in a window of some 50 ms: with that bug this test failed about
one run in two here; the rebalance drill, one in six.)"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from rocksdict import AccessType, Options, Rdict

from streams.contract import topics
from streams.dev.localkafka import free_port
from tests import factories as f
from tests.integration.kafka_io import WorkerProcess, create_topics, name, produce, read, read_records

pytestmark = pytest.mark.integration


def stored_keys(db_dir: Path) -> set[bytes]:
    db = Rdict(str(db_dir), options=Options(raw_mode=True), access_type=AccessType.read_only())
    try:
        keys = [key for key, _ in db.items() if isinstance(key, bytes)]  # raw mode: bytes
        return {key for key in keys if not key.startswith(b"__faust")}
    finally:
        db.close()


def test_a_standby_replica_holds_its_changelog_from_the_first_record(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    env = {**worker_env, "HCS_STANDBY_REPLICAS": "1"}
    scans = [f.scan(venue_id=f"venue-{i % 40}", checkpoint_id=f"venue-{i % 40}-cp") for i in range(3000)]
    first = WorkerProcess(env, tmp_path / "first.log").start()
    second_env = {**env, "HCS_WEB_PORT": str(free_port()), "HCS_DATA_DIR": str(tmp_path / "second")}
    second = WorkerProcess(second_env, tmp_path / "second.log")
    try:
        produce(kafka_bootstrap, name(topics.SCANS, topic_prefix), [(s["venue_id"].encode(), f.encode(s))
                                                                      for s in scans])
        read(kafka_bootstrap, name(topics.DECISIONS, topic_prefix), lambda v: len(v) >= len(scans), timeout_s=60)
        second.start()  # it takes half the partitions, and keeps a standby copy of the other half
        time.sleep(8)  # its standbys catch up (a few hundred records)
    finally:
        assert second.stop() == 0
        first.stop()
    changelog = topics.changelog_topic_name(worker_env["HCS_APP_ID"], "seen")
    marks = read_records(kafka_bootstrap, changelog, topics.SCANS.partitions)
    tables = tmp_path / "second" / "worker" / "v1" / "tables"
    held = {int(db.name.removeprefix("seen-").removesuffix(".db")): db for db in tables.glob("seen-*.db")}
    assert len(held) == topics.SCANS.partitions  # 4 active, 4 standby
    for partition, db in sorted(held.items()):
        wanted = {key for p, key, value, _ in marks if p == partition and value is not None}
        assert wanted and wanted <= stored_keys(db), (partition, len(wanted - stored_keys(db)))
    assert sum(1 for _, key, _, _ in marks if orjson.loads(key).startswith("e|")) == len(scans)
