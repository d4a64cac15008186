"""A real ``hcs worker`` process against a real Kafka broker: records in, decisions/alerts/dead letters out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.contract import topics
from tests import factories as f
from tests.integration.kafka_io import WorkerProcess, create_topics, name, produce, read, running_worker

pytestmark = pytest.mark.integration


@pytest.fixture
def worker(worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str,
           tmp_path: Path) -> Iterator[WorkerProcess]:
    create_topics(kafka_bootstrap, topic_prefix)
    with running_worker(worker_env, tmp_path / "worker.log") as proc:
        yield proc


def test_worker_judges_scans_and_dead_letters_bad_records(
        worker: WorkerProcess, kafka_bootstrap: str, topic_prefix: str) -> None:
    green = f.scan()
    red = f.scan(health_code={"color": "red"})
    scans = name(topics.SCANS, topic_prefix)
    produce(kafka_bootstrap, scans, [
        (b"venue-1", f.encode(green)),
        (b"venue-1", b"{not json"),
        (b"venue-1", f.encode(red)),
        (b"venue-1", f.encode(green)),  # redelivered: no second decision
    ])

    decisions = read(kafka_bootstrap, name(topics.DECISIONS, topic_prefix), lambda v: len(v) >= 2, settle_s=2)
    by_id = {d["event_id"]: d for d in decisions}
    assert len(decisions) == 2
    assert by_id[green["event_id"]]["decision"] == "ALLOW"
    assert by_id[red["event_id"]]["decision"] == "DENY"
    assert by_id[red["event_id"]]["reasons"] == ["HEALTH_CODE_RED"]
    assert all(d["_key"] == "venue-1" and d["policy_version"] == "default-v1" for d in decisions)

    dead = read(kafka_bootstrap, name(topics.DLQ, topic_prefix), lambda v: len(v) >= 1)
    assert [(d["reason"], d["source_topic"], d["_key"]) for d in dead] == [("NOT_JSON", scans, "venue-1")]

    alerts = read(kafka_bootstrap, name(topics.ALERTS, topic_prefix), lambda v: len(v) >= 1)
    assert [(a["kind"], a["severity"], a["person_ref"]) for a in alerts] == [
        ("KEY_PERSON_DETECTED", "critical", red["person_ref"])]

    metrics = worker.metrics_text()
    assert 'hcs_scans_total{decision="ALLOW",district="330106",venue_type="mall"} 1.0' in metrics
    assert 'hcs_duplicates_total{topic="hcs.scans.v1"} 1.0' in metrics
    assert 'hcs_dead_letters_total{reason="NOT_JSON",topic="hcs.scans.v1"} 1.0' in metrics
    assert red["person_ref"] not in metrics

    assert "[ERROR]" not in worker.log_path.read_text(), worker.log_tail()  # bad input is no error
