"""The on-call loop on a real broker and real workers, with escalation levels of seconds:
escalation L1 → L2 → L3 at its times and no further, an ack that stops it, an ack timeout that
returns it to L1, a resolve then a new alert opening a new incident, and a restarted worker
firing a due escalation exactly once."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from streams import cli
from streams.contract import topics
from tests import factories as f
from tests.integration.kafka_io import WorkerProcess, create_topics, name, produce, read

pytestmark = pytest.mark.integration

L2_S, L3_S, ACK_TIMEOUT_S = 6.0, 12.0, 9.0
ESCALATION = {"critical": {"levels": [0, L2_S / 60, L3_S / 60], "ack_timeout_minutes": ACK_TIMEOUT_S / 60},
              "warning": {"levels": [0, 0.5]}}
SLACK_S = 4.0  # the worker's tick (1 s), reading the alert back, a transaction's commit


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def red(person: str, at: datetime | None = None) -> tuple[bytes, bytes]:
    scan = f.scan(at=at or datetime.now(f.SHANGHAI), person_ref=person, health_code={"color": "red"},
                  venue_id="venue-9", checkpoint_id="gate-9")
    return b"venue-9", f.encode(scan)


def of(records: list[dict[str, Any]], person: str) -> list[dict[str, Any]]:
    return [r for r in records if person in r["dedup_key"]]


def steps(records: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(r["history"][-1]["action"], r["status"], r["level"]) for r in records]


def hcs(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(cli.cli, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def escalating(worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str,
               tmp_path: Path) -> tuple[dict[str, str], str]:
    """A worker's environment with escalation levels of seconds, its topics made, and the incidents topic."""
    policy = f.policy_file(tmp_path, "oncall", escalation=ESCALATION)
    create_topics(kafka_bootstrap, topic_prefix)
    return {**worker_env, "HCS_POLICY_FILE": str(policy)}, name(topics.INCIDENTS, topic_prefix)


def test_escalation_ack_timeout_and_resolve_by_processing_time(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    env, incidents_topic = escalating(worker_env, kafka_bootstrap, topic_prefix, tmp_path)
    p1, p2, p3 = f.pseudonym(1001), f.pseudonym(1002), f.pseudonym(1003)
    earlier = datetime.now(f.SHANGHAI) - timedelta(minutes=40)  # past the person-alert dedup window
    produce(kafka_bootstrap, name(topics.SCANS, topic_prefix), [red(p1), red(p2), red(p3, earlier)])
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        first = read(kafka_bootstrap, incidents_topic, lambda v: all(of(v, p) for p in (p1, p2, p3)))
        by_person = {p: of(first, p)[0] for p in (p1, p2, p3)}
        # Acked by an alert id, resolved by the dedup key, as the on-call team would.
        assert "ack written" in hcs(env, "ack", by_person[p2]["alert_ids"][0])
        acked_at = time.time()
        assert "resolve written" in hcs(env, "resolve", by_person[p3]["dedup_key"], "--level", "2")
        read(kafka_bootstrap, incidents_topic, lambda v: any(r["status"] == "RESOLVED" for r in of(v, p3)))
        refused = CliRunner().invoke(cli.cli, ["ack", by_person[p3]["dedup_key"]], env=env)
        produce(kafka_bootstrap, name(topics.SCANS, topic_prefix), [red(p3)])  # a new alert after the resolve

        def done(values: list[dict[str, Any]]) -> bool:
            return (any(r["level"] == 3 for r in of(values, p1))
                    and any(r["history"][-1]["action"] == "timeout" for r in of(values, p2))
                    and len({r["incident_id"] for r in of(values, p3)}) == 2)

        records = read(kafka_bootstrap, incidents_topic, done, timeout_s=60, settle_s=3)
    finally:
        worker.stop()

    escalated = of(records, p1)
    assert steps(escalated) == [("trigger", "TRIGGERED", 1), ("escalate", "TRIGGERED", 2),
                                ("escalate", "TRIGGERED", 3)]  # and no further
    start = ts(escalated[0]["triggered_at"])
    at = [ts(e["at"]) for e in escalated[-1]["escalations"]]
    assert [e["level"] for e in escalated[-1]["escalations"]] == [1, 2, 3]
    assert start + L2_S <= at[1] <= start + L2_S + SLACK_S and start + L3_S <= at[2] <= start + L3_S + SLACK_S, at

    acked = of(records, p2)
    assert steps(acked)[:3] == [("trigger", "TRIGGERED", 1), ("ack", "ACKNOWLEDGED", 1),
                                ("timeout", "TRIGGERED", 1)]  # no escalation while acknowledged
    back = acked[2]
    assert ts(back["acknowledged_at"]) + ACK_TIMEOUT_S <= ts(back["updated_at"]) <= acked_at + ACK_TIMEOUT_S + SLACK_S
    assert [e["level"] for e in back["escalations"]] == [1, 1]
    assert back["history"][1]["by_level"] == 1

    resolved = of(records, p3)
    assert steps(resolved)[:3] == [("trigger", "TRIGGERED", 1), ("resolve", "RESOLVED", 1),
                                   ("trigger", "TRIGGERED", 1)]
    assert resolved[1]["history"][-1]["by_level"] == 2 and resolved[1]["resolved_at"] is not None
    assert resolved[2]["incident_id"] != resolved[0]["incident_id"]
    assert refused.exit_code == 1 and "is RESOLVED since" in refused.output  # one line at the desk

    listed = hcs(env, "incidents", "--open").splitlines()
    assert listed[0].split()[:3] == ["age", "status", "level"] and len(listed) == 4  # P1, P2 and P3's new one


def test_a_restarted_worker_fires_an_escalation_that_fell_due_while_it_was_down_once(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    env, incidents_topic = escalating(worker_env, kafka_bootstrap, topic_prefix, tmp_path)
    person = f.pseudonym(2001)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        produce(kafka_bootstrap, name(topics.SCANS, topic_prefix), [red(person)])
        [triggered] = read(kafka_bootstrap, incidents_topic, lambda v: bool(of(v, person)))
    finally:
        worker.stop()
    start = ts(triggered["triggered_at"])
    time.sleep(max(0.0, start + L3_S + 1 - time.time()))  # both levels fell due while it was down
    worker = WorkerProcess(env, tmp_path / "worker2.log").start()
    try:
        records = read(kafka_bootstrap, incidents_topic, lambda v: len(of(v, person)) >= 2, settle_s=5)
    finally:
        worker.stop()
    changes = of(records, person)
    before = [s for s in steps(changes) if s[0] == "escalate"]
    assert steps(changes)[0] == ("trigger", "TRIGGERED", 1)
    # Stopped within a second of the trigger: nothing escalated before; once back, one escalation
    # straight to the highest level due, written once.
    assert before == [("escalate", "TRIGGERED", 3)], steps(changes)
    assert [e["level"] for e in changes[-1]["escalations"]] == [1, 3]
