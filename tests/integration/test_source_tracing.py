"""Source tracing on a real broker with two workers sharing the venue partitions: a case with
visits at two venues in two partitions traced to its exact contacts, each exposure written once
(one worker killed mid-trace and restarted), a late upload adding one exposure, and a contact
denied at their next scan elsewhere with CONTACT_DETECTED."""

from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from streams.contract import topics
from streams.dev.localkafka import free_port
from streams.kafka.output import partition_for
from tests import factories as f
from tests.integration.kafka_io import WorkerProcess, create_topics, name, produce, read
from tests.schema_check import assert_valid

pytestmark = pytest.mark.integration

CASE = f.pseudonym(9000)
MALL = dict(venue_id="venue-3", venue_type="mall", checkpoint_id="venue-3-a")  # partition 7, 90 minutes
MARKET = dict(venue_id="venue-4", venue_type="supermarket", checkpoint_id="venue-4-a")  # partition 4, 45 minutes
OFFICE = dict(venue_id="venue-26", venue_type="office", checkpoint_id="venue-26-a")  # partition 0


def test_a_case_is_traced_across_partitions_and_workers_each_contact_exposed_once_and_stopped(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    assert {partition_for(v["venue_id"].encode(), 8) for v in (MALL, MARKET, OFFICE)} == {7, 4, 0}
    create_topics(kafka_bootstrap, topic_prefix)
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)

    def at(minutes: float) -> datetime:
        return base + timedelta(minutes=minutes)

    def scan(venue: dict[str, str], person: int | str, minutes: float) -> tuple[bytes, bytes]:
        ref = person if isinstance(person, str) else f.pseudonym(person)
        return venue["venue_id"].encode(), f.encode(f.scan(**venue, person_ref=ref, at=at(minutes)))

    scans = [scan(MALL, CASE, 0), scan(MALL, 1, 30), scan(MALL, 2, 80),  # 2: exactly 10 minutes
             scan(MALL, 3, 81),  # 9 minutes: no contact
             scan(MARKET, CASE, 120), scan(MARKET, 4, 130), scan(MARKET, 5, 160)]  # 5: 5 minutes
    scans_topic = name(topics.SCANS, topic_prefix)
    produce(kafka_bootstrap, scans_topic, scans)
    second_env = {**worker_env, "HCS_WEB_PORT": str(free_port()), "HCS_DATA_DIR": str(tmp_path / "data-2")}
    first = WorkerProcess(worker_env, tmp_path / "worker-1.log").start()
    second = WorkerProcess(second_env, tmp_path / "worker-2.log").start()
    try:
        read(kafka_bootstrap, name(topics.DECISIONS, topic_prefix), lambda v: len(v) >= len(scans), timeout_s=60)
        now = datetime.now(UTC)
        report = {"schema": "hcs.case.v1", "event_id": "cdc-1", "case_id": "HZ-T-1", "person_ref": CASE,
                  "district": "330106", "classification": "confirmed", "sampled_at": f.ts(now - timedelta(hours=1)),
                  "onset_at": None, "reported_at": f.ts(now - timedelta(minutes=1))}
        produce(kafka_bootstrap, name(topics.CASES, topic_prefix), [(CASE.encode(), orjson.dumps(report))])
        second.stop(signal.SIGKILL)  # mid-trace, or just before: its partitions move, and come back
        second = WorkerProcess(second_env, tmp_path / "worker-2b.log").start()
        exposures_topic = name(topics.EXPOSURES, topic_prefix)
        exposures = read(kafka_bootstrap, exposures_topic, lambda v: len(v) >= 3, timeout_s=90)
        traces = read(kafka_bootstrap, name(topics.TRACES, topic_prefix),
                      lambda v: any(t["status"] == "complete" for t in v), timeout_s=90)
        produce(kafka_bootstrap, scans_topic, [scan(MALL, 6, 20)])  # an offline device's upload, late
        exposures = read(kafka_bootstrap, exposures_topic, lambda v: len(v) >= 4, timeout_s=60)
        time.sleep(2)  # every worker's view of the exposures follows within seconds
        produce(kafka_bootstrap, scans_topic, [scan(OFFICE, 1, 6 * 60)])  # contact 1, now, elsewhere
        decisions = read(kafka_bootstrap, name(topics.DECISIONS, topic_prefix),
                         lambda v: any(d["venue_id"] == "venue-26" for d in v), timeout_s=60)
        alerts = read(kafka_bootstrap, name(topics.ALERTS, topic_prefix),
                      lambda v: {"CONTACT_DETECTED", "CASE_TRACED"} <= {a["kind"] for a in v}, timeout_s=30)
        exposures = read(kafka_bootstrap, exposures_topic, lambda v: len(v) >= 4, timeout_s=10, settle_s=5)
    finally:
        first.stop()
        second.stop()

    got = Counter((e["person_ref"], e["venue_id"]) for e in exposures)
    assert got == Counter({(f.pseudonym(1), "venue-3"): 1, (f.pseudonym(2), "venue-3"): 1,
                           (f.pseudonym(4), "venue-4"): 1, (f.pseudonym(6), "venue-3"): 1}), got
    assert all(e["_key"] == e["person_ref"] and e["exposure_id"] == f"HZ-T-1|{e['person_ref']}|{e['venue_id']}"
               for e in exposures)
    assert {e["person_ref"]: e["overlap_minutes"] for e in exposures}[f.pseudonym(2)] == 10.0
    complete = [t for t in traces if t["status"] == "complete"]
    assert len(complete) == 1 and (complete[0]["visits"], complete[0]["venues"], complete[0]["contacts"]) == (2, 2, 3)
    office = next(d for d in decisions if d["venue_id"] == "venue-26")
    assert (office["decision"], office["reasons"]) == ("DENY", ["TRACED_CONTACT"])
    contact_alert = next(a for a in alerts if a["kind"] == "CONTACT_DETECTED")
    assert contact_alert["details"]["case_ids"] == ["HZ-T-1"] and contact_alert["venue_id"] == "venue-26"
    traced_alerts = [a for a in alerts if a["kind"] == "CASE_TRACED"]
    assert len(traced_alerts) == 1 and traced_alerts[0]["details"] == {"visits": 2, "venues": 2, "contacts": 3}
    assert_valid("exposure.v1", exposures)
    assert_valid("trace.v1", traces)
