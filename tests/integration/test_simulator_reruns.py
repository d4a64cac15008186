"""A second run of the simulator with the same seed is judged again (not dropped as redeliveries)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streams.contract import topics
from tests.integration.kafka_io import create_topics, name, read, running_worker

pytestmark = pytest.mark.integration


def simulate(env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "streams", "simulate", "--count", "200", "--seed", "5",
                           "--no-entries", "--quiet"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_two_runs_of_the_same_seed_are_both_decided(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    decisions = name(topics.DECISIONS, topic_prefix)
    with running_worker(worker_env, tmp_path / "worker.log"):
        first = simulate(worker_env)
        after_first = read(kafka_bootstrap, decisions, lambda v: len(v) >= 200, timeout_s=60, settle_s=2)
        second = simulate(worker_env)
        after_second = read(kafka_bootstrap, decisions, lambda v: len(v) >= 2 * len(after_first), timeout_s=60)
    assert len(after_first) >= 200  # the simulator's own duplicates are not decided twice
    assert len(after_second) == 2 * len(after_first)  # the second run is new events, the same content
    assert "duplicate_records" in first and "malformed_records" in first
    assert first.split(":", 1)[0] != second.split(":", 1)[0]  # "sent (run <id>)": one id per run
