"""`hcs dlq`: the dead letters as a table — where each record came from, why, its key — and
never a payload value (an ID number sent by mistake stays out of the output)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from streams import cli
from streams.contract import topics
from tests import factories as f
from tests.integration.kafka_io import WorkerProcess, create_topics, name, produce, read

pytestmark = pytest.mark.integration


def test_dlq_lists_the_refused_records_without_their_values(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    id_number = f.valid_id_number("330106", "19900101", "123")
    produce(kafka_bootstrap, name(topics.SCANS, topic_prefix), [
        (b"venue-1", b"not json at all"),
        (b"venue-2", f.encode(f.scan(venue_id="venue-2", person_ref=id_number))),
        (b"venue-3", f.encode(f.scan(venue_id="venue-3", health_code={"color": "purple"}))),
    ])
    with_worker = WorkerProcess(worker_env, tmp_path / "worker.log").start()
    try:
        read(kafka_bootstrap, name(topics.DLQ, topic_prefix), lambda v: len(v) >= 3)
    finally:
        with_worker.stop()
    every = CliRunner().invoke(cli.cli, ["dlq"], env=worker_env)
    assert every.exit_code == 0, every.output
    lines = every.output.splitlines()
    assert lines[0].split() == ["received", "topic", "partition@offset", "reason", "key", "detail"]
    body = "\n".join(lines[1:])
    assert len(lines) == 4 and "NOT_JSON" in body and body.count("SCHEMA_INVALID") == 2
    assert "venue-2" in body and "person_ref: must be" in body and "health_code.color" in body
    assert id_number not in every.output and "purple" not in every.output
    only = CliRunner().invoke(cli.cli, ["dlq", "--reason", "NOT_JSON"], env=worker_env)
    assert only.exit_code == 0 and len(only.output.splitlines()) == 2 and "venue-1" in only.output
    later = CliRunner().invoke(cli.cli, ["dlq", "--since", "2099-01-01T00:00:00+08:00"], env=worker_env)
    assert later.exit_code == 0 and later.output.strip() == "no dead letters match"
