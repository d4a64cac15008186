"""Closed-loop supervision through a real broker and real ``hcs worker`` processes: each path of a
finding straddles a worker restart, so what the first worker left in its state (a pending
finding, a verified one, an overdue one, a checkpoint's violation windows of the day) is what
the second one goes on from.

- rectified before the restart, verified after it, looked back at: CLOSED;
- verified before, a mask violation at a checkpoint of the venue after: REOPENED, repeat_count 1,
  a FINDING_REOPENED alert, a new deadline;
- past its deadline before: one FINDING_OVERDUE, and none again after the restart;
- two violation windows of a checkpoint before, the third of the same local day after: one
  automatic THREE_100 finding;
- an action the state does not allow, before and after: dead-lettered as INVALID_TRANSITION.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.contract import topics
from streams.times import SHANGHAI, rfc3339
from tests import factories as f
from tests.integration.kafka_io import WorkerProcess, create_topics, name, produce, read
from tests.schema_check import assert_valid

pytestmark = pytest.mark.integration

DISTRICT = "330108"


A, B, C, D = f.venues_on_partitions("sup-venue", 4, topics.FINDINGS.partitions)
_n = iter(range(1_000_000))


def event(venue: str, action: str, at: float, **fields: Any) -> tuple[bytes, bytes]:
    return venue.encode(), f.encode({
        "schema": "hcs.finding-event.v1", "event_id": f"fe-{next(_n)}", "finding_id": f"F-{venue}",
        "venue_id": venue, "venue_type": "mall", "district": DISTRICT, "action": action,
        "at": rfc3339(at), **fields})


def scan(venue: str, at: float, **fields: Any) -> tuple[bytes, bytes]:
    when = datetime.fromtimestamp(at, SHANGHAI)
    return venue.encode(), f.encode(f.scan(at=when, venue_id=venue, checkpoint_id=f"cp-{venue}",
                                           district=DISTRICT, **fields))


def violation(venue: str, start: float) -> list[tuple[bytes, bytes]]:
    """A window of ``venue``'s checkpoint with a mask miss, and a scan past its grace."""
    return [scan(venue, start, mask=False), scan(venue, start + 12 * 60)]


def by_finding(statuses: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for s in statuses:
        out.setdefault(s["finding_id"], []).append(s)
    return out


def test_every_path_of_a_finding_across_a_worker_restart(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    findings_topic, scans_topic = name(topics.FINDINGS, topic_prefix), name(topics.SCANS, topic_prefix)
    status_topic, alerts_topic = name(topics.FINDING_STATUS, topic_prefix), name(topics.ALERTS, topic_prefix)
    dlq = name(topics.DLQ, topic_prefix)
    now = time.time()
    day, hour = 86400.0, 3600.0
    yesterday = datetime.now(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    d_windows = [(yesterday + timedelta(hours=h)).timestamp() for h in (9, 10, 11)]
    b_window = (now - hour) // 600 * 600

    first = [event(A, "open", now - 10 * day, problem="OTHER"), event(A, "rectify", now - 10 * day + hour),
             event(B, "open", now - 3 * day, problem="MASK"), event(B, "rectify", now - 3 * day + hour),
             event(B, "verify", now - 2 * day),
             event(C, "open", now - 3 * hour, problem="THREE_100", deadline=rfc3339(now - hour)),
             event(C, "verify", now - 2 * hour)]  # refused: nothing to verify yet
    produce(kafka_bootstrap, findings_topic, first)
    produce(kafka_bootstrap, scans_topic, violation(D, d_windows[0]) + violation(D, d_windows[1]))

    worker = WorkerProcess(worker_env, tmp_path / "worker.log").start()
    try:
        statuses = read(kafka_bootstrap, status_topic, lambda v: len(v) >= 7, timeout_s=90)
        alerts = read(kafka_bootstrap, alerts_topic, lambda v: len(v) >= 3, timeout_s=60)
        dead = read(kafka_bootstrap, dlq, lambda v: len(v) >= 1, timeout_s=30)
    finally:
        worker.stop()
    assert [s["status"] for s in by_finding(statuses)[f"F-{A}"]] == ["OPEN", "PENDING_VERIFICATION"]
    assert by_finding(statuses)[f"F-{B}"][-1]["status"] == "VERIFIED"
    assert by_finding(statuses)[f"F-{C}"][-1]["overdue"] is True
    assert sorted(a["kind"] for a in alerts) == ["FINDING_OVERDUE", "THREE_100_VIOLATION", "THREE_100_VIOLATION"]
    assert [(d["reason"], d["detail"]) for d in dead] == [
        ("INVALID_TRANSITION", "action: verify is not allowed on a finding that is OPEN")]

    second = [event(A, "verify", now - 9 * day), event(A, "reject", now - 9 * day + hour),  # refused: verified
              first[0], first[5]]  # redelivered: applied once, already
    produce(kafka_bootstrap, findings_topic, second)
    produce(kafka_bootstrap, scans_topic, violation(D, d_windows[2]) + violation(B, b_window))

    restarted = WorkerProcess(worker_env, tmp_path / "worker-2.log").start()
    try:
        def done(values: list[dict[str, Any]]) -> bool:
            latest = {v["finding_id"]: v for v in values}
            return (latest.get(f"F-{A}", {}).get("status") == "CLOSED"
                    and latest.get(f"F-{B}", {}).get("status") == "REOPENED"
                    and f"auto|{D}|{yesterday.date().isoformat()}" in latest)

        statuses = read(kafka_bootstrap, status_topic, done, timeout_s=90, settle_s=3)
        alerts = read(kafka_bootstrap, alerts_topic, lambda v: len(v) >= 6, timeout_s=30, settle_s=2)
        dead = read(kafka_bootstrap, dlq, lambda v: len(v) >= 2, timeout_s=30, settle_s=1)
        metrics = restarted.metrics_text()
    finally:
        restarted.stop()

    findings = by_finding(statuses)
    closed = findings[f"F-{A}"][-1]
    assert [h["action"] for h in closed["history"]] == ["open", "rectify", "verify", "close"]
    assert closed["history"][-1]["at"] == rfc3339(now - 9 * day + 7 * day)  # at the look-back
    reopened = findings[f"F-{B}"][-1]
    window_end = b_window + 600
    assert (reopened["repeat_count"], reopened["deadline"], reopened["look_back_at"]) == (
        1, rfc3339(window_end + 48 * hour), None)
    auto = findings[f"auto|{D}|{yesterday.date().isoformat()}"]
    assert len(auto) == 1 and (auto[0]["source"], auto[0]["problem"], auto[0]["status"]) == (
        "auto", "THREE_100", "OPEN")
    assert auto[0]["opened_at"] == rfc3339(d_windows[2] + 600)
    assert [s["status"] for s in findings[f"F-{C}"]] == ["OPEN", "OPEN"]  # opened, then overdue: no more

    kinds = sorted(a["kind"] for a in alerts)
    assert kinds == ["FINDING_OVERDUE", "FINDING_REOPENED"] + ["THREE_100_VIOLATION"] * 4, kinds
    (reopen_alert,) = [a for a in alerts if a["kind"] == "FINDING_REOPENED"]
    assert (reopen_alert["venue_id"], reopen_alert["dedup_key"], reopen_alert["severity"]) == (
        B, f"FINDING_REOPENED|F-{B}|1", "warning")
    assert sorted((d["reason"], d["detail"]) for d in dead) == [
        ("INVALID_TRANSITION", "action: reject is not allowed on a finding that is VERIFIED"),
        ("INVALID_TRANSITION", "action: verify is not allowed on a finding that is OPEN")]
    assert 'hcs_duplicates_total{topic="hcs.findings.v1"} 2.0' in metrics
    assert f'hcs_findings{{district="{DISTRICT}",status="CLOSED"}} 1.0' in metrics
    assert f'hcs_findings{{district="{DISTRICT}",status="REOPENED"}} 1.0' in metrics
    assert f'hcs_findings_overdue{{district="{DISTRICT}"}} 1.0' in metrics
    assert f'hcs_finding_transitions_total{{action="reopen",district="{DISTRICT}"}} 1.0' in metrics
    assert_valid("finding-status.v1", statuses)
    assert_valid("alert.v1", alerts)
    assert_valid("deadletter.v1", dead)
