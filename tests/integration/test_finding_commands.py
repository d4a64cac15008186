"""``hcs finding`` and ``hcs findings`` against a real broker and a real worker: an inspector
opens a finding, the venue rectifies it, a supervisor verifies it, and the table shows each
state; a mistaken action is one line and writes nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from streams import cli
from streams.contract import topics
from tests.integration.kafka_io import WorkerProcess, create_topics, name, read
from tests.schema_check import assert_valid

pytestmark = pytest.mark.integration


def hcs(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli.cli, list(args), env=env)


def until_status(env: dict[str, str], finding_id: str, status: str, timeout_s: float = 30.0) -> list[str]:
    """``hcs findings`` until the finding shows ``status``; its lines."""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = hcs(env, "findings").output.splitlines()
        row = next((line for line in lines if line.startswith(finding_id)), "")
        if f" {status} " in row or time.monotonic() > deadline:
            return lines
        time.sleep(0.5)


def test_open_rectify_verify_from_the_command_line_and_mistakes_refused_before_writing(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    env = worker_env
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        opened = hcs(env, "finding", "open", "--venue", "mall-77", "--venue-type", "mall", "--district", "330106",
                     "--problem", "MASK", "--checkpoint", "cp-77-1", "--id", "F-77",
                     "--note", "gate 2 staff without masks")
        assert opened.exit_code == 0, opened.output
        assert opened.output == "opened F-77 (MASK at mall-77)\n"
        lines = until_status(env, "F-77", "OPEN")
        header, row = lines[0].split(), next(line for line in lines if line.startswith("F-77")).split()
        assert header == ["finding", "district", "venue", "problem", "source", "status", "repeats", "deadline",
                          "overdue", "updated"]
        assert row[:7] == ["F-77", "330106", "mall-77", "MASK", "inspection", "OPEN", "0"]

        # Mistakes: one line each, exit 1, nothing written.
        refused = hcs(env, "finding", "verify", "F-77")
        assert (refused.exit_code, refused.output) == (
            1, "hcs: not written: action: verify is not allowed on a finding that is OPEN\n")
        unknown = hcs(env, "finding", "rectify", "F-78")
        assert unknown.exit_code == 1 and unknown.output.startswith("hcs: finding F-78 is not on the status topic")
        taken = hcs(env, "finding", "open", "--venue", "mall-77", "--venue-type", "mall", "--district", "330106",
                    "--problem", "OTHER", "--id", "F-77")
        assert (taken.exit_code, taken.output) == (1, "hcs: finding F-77 exists already: choose another --id\n")
        leaky = hcs(env, "finding", "open", "--venue", "mall-77", "--venue-type", "mall", "--district", "330106",
                    "--problem", "OTHER", "--note", "called 11010519491231002X")
        assert (leaky.exit_code, leaky.output) == (1, "hcs: not written: note: holds a resident ID number\n")
        bad_time = hcs(env, "finding", "rectify", "F-77", "--at", "2022-05-10 08:00")
        assert bad_time.exit_code == 1 and "no UTC offset" in bad_time.output

        for action, status in (("rectify", "PENDING_VERIFICATION"), ("verify", "VERIFIED")):
            done = hcs(env, "finding", action, "F-77")
            assert (done.exit_code, done.output) == (0, f"{action} F-77: written\n"), done.output
            until_status(env, "F-77", status)
        verified = hcs(env, "findings", "--status", "VERIFIED", "--district", "330106").output.splitlines()
        assert len(verified) == 2 and verified[1].split()[5] == "VERIFIED"
        assert hcs(env, "findings", "--overdue").output == "no findings match\n"
        assert hcs(env, "findings", "--district", "330105").output == "no findings match\n"
    finally:
        worker.stop()

    events: list[dict[str, Any]] = read(kafka_bootstrap, name(topics.FINDINGS, topic_prefix),
                                        lambda v: len(v) >= 3, settle_s=1)
    assert [e["action"] for e in events] == ["open", "rectify", "verify"]  # the mistakes wrote nothing
    assert all(e["_key"] == "mall-77" for e in events)
    assert_valid("finding-event.v1", [{k: v for k, v in e.items() if k != "_key"} for e in events])
    assert read(kafka_bootstrap, name(topics.DLQ, topic_prefix), lambda v: True, timeout_s=2, settle_s=1) == []
