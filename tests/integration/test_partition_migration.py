"""Growing past the partitions on a real broker: a generation of 2 venue partitions moved to one of
4 with ``hcs migrate`` while scans keep coming — to the old topics before and after the move,
to the new ones after it, some sent to both (a device retrying across its switch). Every scan is
decided once; a case reported after the move is traced to a contact of before it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from streams.contract import topics
from streams.dev.localkafka import free_port
from streams.kafka.output import partition_for
from tests import factories as f
from tests.integration.kafka_io import WorkerProcess, name, produce, read, read_records

pytestmark = pytest.mark.integration

CASE = f.pseudonym(7100)
CONTACT = f.pseudonym(7101)


def test_a_generation_moved_to_more_partitions_decides_every_scan_once_and_traces_across_the_move(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    # venues[q] is on new partition q of 4, and on old partition q % 2 of 2.
    venues = sorted(f.venues_on_partitions("mig-venue", 4, 4), key=lambda v: partition_for(v.encode(), 4))
    assert [partition_for(v.encode(), 2) for v in venues] == [0, 1, 0, 1]
    traced_at = venues[3]  # moves from old partition 1 to new partition 3, its visits with it
    old_env = {**worker_env, "HCS_VENUE_PARTITIONS": "2"}
    new_prefix, new_app = f"{topic_prefix}g2.", f"{topic_prefix}worker-g2"
    new_env = {**worker_env, "HCS_VENUE_PARTITIONS": "4", "HCS_TOPIC_PREFIX": new_prefix, "HCS_APP_ID": new_app,
               "HCS_WEB_PORT": str(free_port()), "HCS_DATA_DIR": str(tmp_path / "data-g2")}
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)

    def scan(venue: str, minutes: float, person: str | None = None) -> dict[str, object]:
        extra = {} if person is None else {"person_ref": person}
        return f.scan(venue_id=venue, checkpoint_id=f"{venue}-a", venue_type="mall",
                      at=base + timedelta(minutes=minutes), **extra)

    def records(scans: list[dict[str, object]]) -> list[tuple[bytes, bytes]]:
        return [(str(s["venue_id"]).encode(), f.encode(s)) for s in scans]

    before = [scan(venues[i % 4], i) for i in range(40)]
    # Together for 80 minutes, hours after anyone else was there (a mall's visit lasts 90).
    before += [scan(traced_at, 250, CASE), scan(traced_at, 260, CONTACT)]
    during = [scan(venues[i % 4], 100 + i) for i in range(20)]  # to the old topics, no worker reading them
    after = [scan(venues[i % 4], 130 + i) for i in range(20)]
    old_scans, new_scans = name(topics.SCANS, topic_prefix), name(topics.SCANS, new_prefix)

    old = WorkerProcess(old_env, tmp_path / "old.log").start()
    try:
        produce(kafka_bootstrap, old_scans, records(before))
        read(kafka_bootstrap, name(topics.DECISIONS, topic_prefix), lambda v: len(v) >= len(before), timeout_s=60)
    finally:
        assert old.stop() == 0  # the old generation stops cleanly: its offsets committed
    produce(kafka_bootstrap, old_scans, records(during))

    moving = subprocess.Popen(
        [sys.executable, "-m", "streams", "migrate", "--from-app-id", worker_env["HCS_APP_ID"], "--from-prefix",
         topic_prefix, "--from-partitions", "2", "--until-idle", "10"],
        env={**new_env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    said: list[str] = []
    carried = threading.Event()

    def follow() -> None:
        assert moving.stdout is not None
        for line in moving.stdout:
            said.append(line.rstrip())
            if line.startswith("state carried"):
                carried.set()

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    assert carried.wait(90), "\n".join(said)
    new = WorkerProcess(new_env, tmp_path / "new.log").start()
    try:
        # The devices switch: new scans to the new topics, some sent again there (a retry across
        # the switch), one device still on the old topics for a while (relayed).
        produce(kafka_bootstrap, new_scans, records(after + before[:10] + during[:5]))
        produce(kafka_bootstrap, old_scans, records(before[10:15]))
        everything = {s["event_id"] for s in before + during + after}
        old_decisions = read(kafka_bootstrap, name(topics.DECISIONS, topic_prefix), lambda v: True, timeout_s=5,
                             settle_s=2)
        new_decisions = read(kafka_bootstrap, name(topics.DECISIONS, new_prefix),
                             lambda v: {d["event_id"] for d in old_decisions + v} >= everything, timeout_s=90,
                             settle_s=5)
        now = datetime.now(UTC)
        report = {"schema": "hcs.case.v1", "event_id": "mig-cdc-1", "case_id": "HZ-MIG-1", "person_ref": CASE,
                  "district": "330106", "classification": "confirmed", "sampled_at": f.ts(now - timedelta(hours=1)),
                  "onset_at": None, "reported_at": f.ts(now - timedelta(minutes=1))}
        produce(kafka_bootstrap, name(topics.CASES, new_prefix), [(CASE.encode(), orjson.dumps(report))])
        exposures = read(kafka_bootstrap, name(topics.EXPOSURES, new_prefix),
                         lambda v: any(e["person_ref"] == CONTACT for e in v), timeout_s=60, settle_s=3)
        traces = read(kafka_bootstrap, name(topics.TRACES, new_prefix),
                      lambda v: any(t["status"] == "complete" for t in v), timeout_s=60)
        assert moving.wait(60) == 0, "\n".join(said)
    finally:
        new.stop()
        if moving.poll() is None:
            moving.kill()
    follower.join(5)
    print("\n".join(said))

    decided = Counter(d["event_id"] for d in old_decisions + new_decisions)
    assert set(decided) == everything  # none lost
    assert [e for e, n in decided.items() if n > 1] == []  # none decided twice
    assert Counter(d["event_id"] for d in old_decisions) == Counter(s["event_id"] for s in before)
    assert [(e["person_ref"], e["venue_id"]) for e in exposures] == [(CONTACT, traced_at)]
    assert traces[-1]["status"] == "complete"
    # Each visit carried to its venue's new partition, with its timestamp (its retention runs from it).
    old_visits = read_records(kafka_bootstrap, f"{worker_env['HCS_APP_ID']}-visits-changelog", 2)
    moved = read_records(kafka_bootstrap, f"{new_app}-visits-changelog", 4)
    new_visits = {key: (p, stamp) for p, key, _, stamp in moved}
    assert len(old_visits) == len(before)
    for _, key, _, stamp in old_visits:
        assert new_visits[key] == (partition_for(key[1:].split(b"\0")[0], 4), stamp)
    relayed = next(line for line in said if line.startswith("relayed:"))
    assert f"{topics.SCANS.name} 25" in relayed, said  # the 20 sent while no worker read them, 5 after
    assert os.path.exists(tmp_path / "data-g2")
