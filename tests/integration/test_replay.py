"""``hcs replay`` on a real broker: simulated scans judged by two real workers, one under the policy
in force and one under a candidate; the replay, which writes nothing, reports the same decisions
per district and venue type as each worker made, and prints its table."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from streams import cli
from streams.contract import topics
from streams.dev.localkafka import free_port
from streams.dev.simulate import Simulator
from streams.times import rfc3339
from tests import factories as f
from tests.integration.kafka_io import WorkerProcess, create_topics, name, produce, read

pytestmark = pytest.mark.integration


def test_replay_reports_what_workers_under_each_policy_decided(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    # Replay judges the rules, not the traces: the simulator's positive NATs start none here (a
    # traced contact's flag depends on when its exposure was written, which a replay cannot know).
    in_force = f.policy_file(tmp_path, "in-force", fever_threshold_c=37.3, trace_on_nat_positive=False)
    candidate = tmp_path / "candidate.json"
    candidate.write_text(json.dumps({"schema": "hcs.policy.v1", "versions": [
        {"version": "candidate", "valid_from": "2099-01-01T00:00:00+08:00",  # its rules apply to the whole range
         "defaults": {"fever_threshold_c": 37.0, "vaccination_required": True, "trace_on_nat_positive": False},
         "venue_types": {"mall": {"nat_window_hours": 24}}}]}))
    sim = Simulator(seed=11, run_id=topic_prefix.strip("."))
    started = time.time()
    produce(kafka_bootstrap, name(topics.SCANS, topic_prefix), [(k, v) for k, v, _ in sim.records(3000, batch=3)])
    scans = sim.counts["scans"]

    envs = [{**worker_env, "HCS_APP_ID": f"{topic_prefix}{who}", "HCS_POLICY_FILE": str(policy),
             "HCS_WEB_PORT": str(free_port()), "HCS_DATA_DIR": str(tmp_path / f"data-{who}")}
            for who, policy in (("a", in_force), ("b", candidate))]
    workers = [WorkerProcess(env, tmp_path / f"worker-{i}.log").start() for i, env in enumerate(envs)]
    try:
        decisions = read(kafka_bootstrap, name(topics.DECISIONS, topic_prefix), lambda v: len(v) >= 2 * scans,
                         timeout_s=120, settle_s=2)
    finally:
        for w in workers:
            w.stop()
    assert len(decisions) == 2 * scans

    out = tmp_path / "replay.json"
    result = CliRunner().invoke(cli.cli, [
        "replay", "--from", rfc3339(started - 2 * 3600), "--to", rfc3339(time.time() + 60),
        "--policy", str(candidate), "--out", str(out)], env=envs[0])
    assert result.exit_code == 0, result.output
    replayed: dict[str, Any] = json.loads(out.read_text())

    def by_worker(version: str) -> dict[tuple[str, str], Counter[str]]:
        counts: dict[tuple[str, str], Counter[str]] = {}
        for d in decisions:
            if d["policy_version"] == version:
                counts.setdefault((d["district"], d["venue_type"]), Counter())[d["decision"]] += 1
        return counts

    figures = {(x["district"], x["venue_type"]): x for x in replayed["figures"]}
    assert {k: Counter(x["current"]) for k, x in figures.items()} == by_worker("in-force")
    assert {k: Counter(x["candidate"]) for k, x in figures.items()} == by_worker("candidate")
    assert replayed["scans"] == scans
    assert replayed["skipped"].get("duplicate", 0) == 3 * sim.counts["duplicate_records"]  # 3 scans a record
    changed = sum(x["changed"] for x in replayed["figures"])
    assert changed > 0 and len(replayed["changes"]) == min(changed, 1000)
    assert "person_ref" not in out.read_text()  # the detail names scans, not people
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["district", "venue", "type", "scans"]
    assert f"{scans} scans, {changed} with another decision under the candidate" in result.stdout
    assert "replaying" in result.stderr  # the progress bar
    # Nothing was written: the decisions topic holds the workers' decisions only.
    assert len(read(kafka_bootstrap, name(topics.DECISIONS, topic_prefix), lambda v: False, timeout_s=3)) == 2 * scans
