"""`make run` schedules its demo policy version once per broker: a second run leaves what is
published (an operator's version included) in force."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from streams import cli
from streams.dev.local import _schedule_policy
from tests.integration.kafka_io import create_topics

pytestmark = pytest.mark.integration


def test_the_demo_policy_is_published_once_per_broker(worker_env: dict[str, str], kafka_bootstrap: str,
                                                      topic_prefix: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    _schedule_policy(worker_env, tmp_path / "first")
    first = capsys.readouterr().out
    _schedule_policy(worker_env, tmp_path / "second")
    second = capsys.readouterr().out
    assert "(fever threshold 37.2) takes effect at" in first
    assert "was published by an earlier run (once per broker)" in second
    listed = CliRunner().invoke(cli.cli, ["policy", "list"], env=worker_env).output.splitlines()
    assert [line.split()[0] for line in listed[1:]].count(first.split()[3]) == 1
    assert sum(line.startswith("local-") for line in listed) == 1
