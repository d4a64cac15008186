"""Key personnel under management through a real broker and real ``hcs worker`` processes: the
register read whole before the first scan and followed after, each phase's decision and alert,
a release mid-stream, two workers each holding the whole register, a restart from nothing."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.contract import topics
from streams.dev.localkafka import free_port
from streams.times import SHANGHAI
from tests import factories as f
from tests.integration.kafka_io import WorkerProcess, create_topics, name, produce, read
from tests.schema_check import assert_valid

pytestmark = pytest.mark.integration

DAY = timedelta(days=1)
HOME_ONLY = (("home_isolation", 7),)


def readyz(worker: WorkerProcess) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/readyz", timeout=2) as resp:
            return dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        return dict(json.loads(exc.read()))


def register_status(worker: WorkerProcess) -> dict[str, Any]:
    return dict(readyz(worker)["checks"]["view management"])


def until(check: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.2)


def plans(bootstrap: str, prefix: str, *values: dict[str, Any] | tuple[str, None]) -> None:
    """Publish register records (a plan, or (person_ref, None) for a tombstone)."""
    records: list[tuple[bytes | None, bytes | None]] = []
    for value in values:
        if isinstance(value, tuple):
            records.append((value[0].encode(), None))
        else:
            records.append((value["person_ref"].encode(), f.encode(value)))
    produce(bootstrap, name(topics.MANAGEMENT, prefix), records)


def gauge(metrics: str, district: str, phase: str) -> float:
    line = f'hcs_managed_persons{{district="{district}",phase="{phase}"}} '
    return sum(float(row.split()[-1]) for row in metrics.splitlines() if row.startswith(line))


def test_each_phase_is_judged_as_the_contract_says_and_a_release_takes_effect_for_the_next_scan(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    isolated, released, ref_bad = f.pseudonym(101), f.pseudonym(102), f.pseudonym(103)
    plans(kafka_bootstrap, topic_prefix,
          f.plan(isolated),  # 14+7+7 from 2022-05-10 (T0's day): centralized at iso-1, managed by Gongshu
          f.plan(released, phases=HOME_ONLY, plan_id="plan-2"),
          f.plan(ref_bad, plan_id="plan-3"),
          {**f.plan(ref_bad), "phases": [{"kind": "quarantine_hotel", "days": 3}]})  # refused: plan-3 stays
    day3, day23, day29 = f.T0 + 2 * DAY, f.T0 + 22 * DAY, f.T0 + 28 * DAY
    point = dict(venue_id="iso-1", venue_type="isolation_point", checkpoint_id="iso-1-gate")
    market = dict(venue_id="market-1", venue_type="supermarket", checkpoint_id="market-1-a")
    home = dict(venue_id="home-1", venue_type="nursing_home", checkpoint_id="home-1-a")
    at_point = f.scan(at=day3, person_ref=isolated, **point)
    breach = f.scan(at=day3, person_ref=isolated, **market)
    restricted = f.scan(at=day23, person_ref=isolated, **home)
    reported = f.scan(at=day23, person_ref=isolated, **{**market, "venue_id": "market-2"})
    after = f.scan(at=day29, person_ref=isolated, **{**market, "venue_id": "market-3"})
    before_release = f.scan(at=f.T0 + DAY, person_ref=released, **{**market, "venue_id": "market-4"})
    after_release = f.scan(at=f.T0 + DAY, person_ref=released, **{**market, "venue_id": "market-5"})
    still_managed = f.scan(at=day3, person_ref=ref_bad, **{**market, "venue_id": "market-6"})
    scans = name(topics.SCANS, topic_prefix)
    worker = WorkerProcess(worker_env, tmp_path / "worker.log").start()
    try:
        assert register_status(worker)["keys"] == 3  # loaded before the worker said ready
        produce(kafka_bootstrap, scans, [(s["venue_id"].encode(), f.encode(s)) for s in
                                         (at_point, breach, restricted, reported, after, before_release,
                                          still_managed)])
        read(kafka_bootstrap, name(topics.DECISIONS, topic_prefix), lambda v: len(v) >= 7)
        plans(kafka_bootstrap, topic_prefix, {**f.plan(released, phases=HOME_ONLY), "status": "released"})
        until(lambda: register_status(worker)["keys"] == 2)
        produce(kafka_bootstrap, scans, [(b"market-5", f.encode(after_release))])
        decisions = read(kafka_bootstrap, name(topics.DECISIONS, topic_prefix), lambda v: len(v) >= 8, settle_s=2)
        alerts = read(kafka_bootstrap, name(topics.ALERTS, topic_prefix), lambda v: len(v) >= 4, settle_s=2)
        dead = read(kafka_bootstrap, name(topics.DLQ, topic_prefix), lambda v: len(v) >= 1, settle_s=1)
        metrics = worker.metrics_text()
    finally:
        worker.stop()

    got = {d["event_id"]: (d["decision"], d["reasons"]) for d in decisions}
    assert got == {
        at_point["event_id"]: ("ALLOW", []),
        breach["event_id"]: ("DENY", ["ISOLATION_BREACH"]),
        restricted["event_id"]: ("DENY", ["UNDER_HEALTH_MONITORING"]),
        reported["event_id"]: ("ALLOW_WITH_REPORT", ["UNDER_HEALTH_MONITORING"]),
        after["event_id"]: ("ALLOW", []),
        before_release["event_id"]: ("DENY", ["ISOLATION_BREACH"]),
        after_release["event_id"]: ("ALLOW", []),
        still_managed["event_id"]: ("DENY", ["ISOLATION_BREACH"]),
    }
    by_event = {a["event_ids"][0]: a for a in alerts}
    assert {(e, a["kind"], a["severity"]) for e, a in by_event.items()} == {
        (breach["event_id"], "ISOLATION_BREACH", "critical"),
        (restricted["event_id"], "MONITORING_RESTRICTED", "warning"),
        (before_release["event_id"], "ISOLATION_BREACH", "critical"),
        (still_managed["event_id"], "ISOLATION_BREACH", "critical"),
    }
    assert len(alerts) == 4
    assert by_event[breach["event_id"]]["details"] == {
        "plan_id": "plan-1", "plan": "14+7+7", "phase": "centralized_isolation", "day": 3,
        "isolation_point_id": "iso-1", "managing_district": "330105"}
    assert by_event[restricted["event_id"]]["details"]["phase"] == "health_monitoring"
    assert by_event[restricted["event_id"]]["details"]["day"] == 23
    assert by_event[before_release["event_id"]]["details"]["isolation_point_id"] is None
    (letter,) = dead
    assert (letter["source_topic"], letter["reason"]) == (name(topics.MANAGEMENT, topic_prefix), "SCHEMA_INVALID")
    assert letter["detail"].startswith("phases"), letter["detail"]
    assert_valid("decision.v1", decisions)
    assert_valid("alert.v1", alerts)
    assert_valid("deadletter.v1", dead)
    assert 'hcs_scan_reasons_total{district="330106",reason="ISOLATION_BREACH",venue_type="supermarket"} 3.0' in metrics
    assert 'hcs_alerts_total{district="330106",kind="ISOLATION_BREACH",severity="critical"} 3.0' in metrics


def test_two_workers_on_one_group_both_hold_the_whole_register_and_judge_by_it(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    people = [f.pseudonym(200 + i) for i in range(40)]  # over the register's 4 partitions
    now = datetime.now(SHANGHAI)  # the gauge counts today's managed persons: plans of today
    plans(kafka_bootstrap, topic_prefix, *(f.plan(ref, start=now.date().isoformat(), phases=HOME_ONLY,
                                                  plan_id=f"plan-{i}") for i, ref in enumerate(people)))
    second_env = {**worker_env, "HCS_WEB_PORT": str(free_port()), "HCS_DATA_DIR": str(tmp_path / "data-2")}
    first = WorkerProcess(worker_env, tmp_path / "worker-1.log").start()
    second = WorkerProcess(second_env, tmp_path / "worker-2.log").start()
    try:
        until(lambda: all(readyz(w)["ready"] for w in (first, second)))
        # Each person scanned at a venue of their own: the venues spread over every partition,
        # so each worker judges people whose plans came from every register partition.
        scans = [f.scan(at=now, person_ref=ref, venue_id=f"venue-{i}", checkpoint_id=f"venue-{i}-a")
                 for i, ref in enumerate(people)]
        produce(kafka_bootstrap, name(topics.SCANS, topic_prefix), [(s["venue_id"].encode(), f.encode(s))
                                                                    for s in scans])
        decisions = read(kafka_bootstrap, name(topics.DECISIONS, topic_prefix), lambda v: len(v) >= 40, settle_s=2)
        statuses = [register_status(w) for w in (first, second)]
        texts = [w.metrics_text() for w in (first, second)]
    finally:
        second.stop()
        first.stop()
    assert [s["keys"] for s in statuses] == [40, 40]
    assert [gauge(text, "330105", "home_isolation") for text in texts] == [40.0, 40.0]
    assert len(decisions) == 40 and {(d["decision"], tuple(d["reasons"])) for d in decisions} == {
        ("DENY", ("ISOLATION_BREACH",))}
    # Both workers judged some of them (the partitions were shared), each by the whole register.
    judged = [sum(float(row.split()[-1]) for row in text.splitlines() if row.startswith("hcs_scans_total{"))
              for text in texts]
    assert sum(judged) == 40 and all(judged), judged


def test_a_worker_restarted_with_an_empty_data_dir_judges_its_first_scan_only_after_the_whole_register(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    first_plan = f.plan(f.pseudonym(300), phases=HOME_ONLY)
    plans(kafka_bootstrap, topic_prefix, first_plan)
    worker = WorkerProcess(worker_env, tmp_path / "worker.log").start()
    worker.stop()
    # Meanwhile the register grows, and the newest plan's person is scanned before the worker is back.
    many = [f.plan(f.pseudonym(400 + i), phases=HOME_ONLY, plan_id=f"plan-{i}") for i in range(20_000)]
    plans(kafka_bootstrap, topic_prefix, *many)
    last = many[-1]["person_ref"]
    scan = f.scan(at=f.T0 + DAY, person_ref=last)
    produce(kafka_bootstrap, name(topics.SCANS, topic_prefix), [(b"venue-1", f.encode(scan))])
    fresh_env = {**worker_env, "HCS_DATA_DIR": str(tmp_path / "empty")}
    restarted = WorkerProcess(fresh_env, tmp_path / "worker-2.log").start()
    try:
        (decision,) = read(kafka_bootstrap, name(topics.DECISIONS, topic_prefix), lambda v: len(v) >= 1, settle_s=1)
        status = register_status(restarted)
    finally:
        restarted.stop()
    assert (decision["event_id"], decision["decision"], decision["reasons"]) == (
        scan["event_id"], "DENY", ["ISOLATION_BREACH"])
    assert status["keys"] == 20_001 and status["ready"]
