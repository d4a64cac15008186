"""An isolation point through a real broker and real ``hcs worker`` processes: three residents
over three past local days, a missed temperature check and a missed NAT day, yield exactly the
expected alerts and IsolationDay records, once each, also across a worker restart."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.contract import topics
from streams.rules.policy import load_policy
from streams.times import SHANGHAI
from tests import factories as f
from tests.integration.kafka_io import WorkerProcess, create_topics, name, produce, read
from tests.schema_check import assert_valid

pytestmark = pytest.mark.integration

R1, R2, R3 = f.pseudonym(501), f.pseudonym(502), f.pseudonym(503)
GRACE = timedelta(minutes=load_policy().params(0, "", "isolation_point")[1].observation_grace_minutes)


def observation(n: int, ref: str, at: datetime, kind: str = "temperature", **fields: Any) -> dict[str, Any]:
    value: dict[str, Any] = {"schema": "hcs.observation.v1", "event_id": f"obs-{n}", "isolation_point_id": "iso-9",
                             "district": "330110", "person_ref": ref, "kind": kind, "observed_at": f.ts(at)}
    if kind == "temperature":
        value["temperature_c"] = 36.5
    else:
        value["nat_result"] = fields.get("nat_result", "negative")
    return value


def test_three_residents_over_three_days_yield_the_expected_alerts_and_days_once_across_a_restart(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    # The three days are the last three whose grace has passed (run between 00:00 and 02:00,
    # "yesterday" has not closed yet; after 02:00 it has). Near a day's grace ending, wait it
    # out: a day must not become due while the test runs.
    since = datetime.now(SHANGHAI) - GRACE
    to_next = (since.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1) - since).total_seconds()
    if to_next < 180:
        time.sleep(to_next + 1)
        since = datetime.now(SHANGHAI) - GRACE
    today = since.replace(hour=0, minute=0, second=0, microsecond=0)
    d1, d2, d3 = (today - timedelta(days=n) for n in (3, 2, 1))
    management = name(topics.MANAGEMENT, topic_prefix)
    produce(kafka_bootstrap, management, [
        (ref.encode(), f.encode(f.plan(ref, start=d1.date().isoformat(), isolation_point_id="iso-9",
                                       district="330110")))
        for ref in (R1, R2, R3)])
    observations: list[dict[str, Any]] = []
    for day in (d1, d2, d3):
        for ref in (R1, R2, R3):
            hours = (8,) if (day, ref) == (d2, R2) else (8, 20)  # R2 missed its evening check on d2
            for h in hours:
                observations.append(observation(len(observations), ref, day + timedelta(hours=h)))
    # d1 is day 1 of everyone's centralized phase, a NAT day: R3 was not sampled.
    observations += [observation(100, R1, d1 + timedelta(hours=9), "nat_sample"),
                     observation(101, R2, d1 + timedelta(hours=9), "nat_sample", nat_result=None)]
    records = [(b"iso-9", f.encode(o)) for o in sorted(observations, key=lambda o: o["observed_at"])]
    produce(kafka_bootstrap, name(topics.OBSERVATIONS, topic_prefix), records)

    status, alerts_topic = name(topics.ISOLATION_STATUS, topic_prefix), name(topics.ALERTS, topic_prefix)
    worker = WorkerProcess(worker_env, tmp_path / "worker.log").start()
    try:
        days = read(kafka_bootstrap, status, lambda v: len(v) >= 3, timeout_s=90)
        alerts = read(kafka_bootstrap, alerts_topic, lambda v: len(v) >= 2, settle_s=2)
    finally:
        worker.stop()
    # The restarted worker reads the same observations again (a device resending them) and must
    # neither count them nor close any day a second time.
    produce(kafka_bootstrap, name(topics.OBSERVATIONS, topic_prefix), records[:5])
    restarted = WorkerProcess(worker_env, tmp_path / "worker-2.log").start()
    try:
        time.sleep(15)  # past the stream clock's idle time: a day due now would close
        days_after = read(kafka_bootstrap, status, lambda v: len(v) >= 3, settle_s=2)
        alerts_after = read(kafka_bootstrap, alerts_topic, lambda v: len(v) >= 2, settle_s=1)
        metrics = restarted.metrics_text()
    finally:
        restarted.stop()

    by_date = {d["date"]: d for d in days}
    assert sorted(by_date) == [d.date().isoformat() for d in (d1, d2, d3)] and len(days) == 3
    assert [(d["residents"], d["temperature"], d["nat"], d["late"]) for d in (by_date[x.date().isoformat()]
                                                                           for x in (d1, d2, d3))] == [
        (3, {"due": 6, "done": 6}, {"due": 3, "done": 2}, 0),
        (3, {"due": 6, "done": 5}, {"due": 0, "done": 0}, 0),
        (3, {"due": 6, "done": 6}, {"due": 0, "done": 0}, 0)]
    assert sorted((a["kind"], a["person_ref"], a["details"]["date"]) for a in alerts) == sorted([
        ("NAT_MISSED", R3, d1.date().isoformat()), ("OBSERVATION_MISSED", R2, d2.date().isoformat())])
    missed = next(a for a in alerts if a["kind"] == "OBSERVATION_MISSED")
    assert missed["details"] == {"date": d2.date().isoformat(), "done": 1, "due": 2}
    assert missed["venue_id"] == "iso-9" and missed["district"] == "330110" and missed["severity"] == "warning"
    assert (len(days_after), len(alerts_after)) == (3, 2)  # nothing again after the restart
    assert 'hcs_duplicates_total{topic="hcs.observations.v1"} 5.0' in metrics
    assert_valid("isolation-day.v1", days)
    assert_valid("alert.v1", alerts)
