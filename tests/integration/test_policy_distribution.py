"""Policy versions reach two running workers through a real broker, without a restart: a version
scheduled ahead applies from its valid_from (a late scan from before it keeps the old one), an
invalid version and a change of a version in force are refused (one alert, one dead letter
each) and change nothing, and a rollback makes the old rules apply again."""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from streams import cli
from streams.contract import topics
from streams.dev.localkafka import free_port
from streams.times import SHANGHAI, rfc3339
from tests import factories as f
from tests.integration.kafka_io import WorkerProcess, create_topics, name, produce, read
from tests.schema_check import assert_valid

pytestmark = pytest.mark.integration


def hcs(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli.cli, list(args), env=env)


def policy_file(tmp_path: Path, version: str, valid_from: float, **defaults: Any) -> Path:
    path = tmp_path / f"{version}.json"
    path.write_text(orjson.dumps({"schema": "hcs.policy.v1", "versions": [
        {"version": version, "valid_from": rfc3339(valid_from), "defaults": defaults}]}).decode())
    return path


def wait_for_log(workers: list[WorkerProcess], text: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(text.encode() in w.log_path.read_bytes() for w in workers):
        assert time.monotonic() < deadline, f"no worker log says {text!r}:\n{workers[0].log_tail(20)}"
        time.sleep(0.2)


VENUES = f.venues_on_partitions("pol-venue", topics.SCANS.partitions, topics.SCANS.partitions)
_n = iter(range(1_000_000))


def scans(at: float) -> list[tuple[bytes, bytes]]:
    """One slightly warm scan (37.1 °C) at every partition's venue: a fever under 37.0."""
    when = datetime.fromtimestamp(at, SHANGHAI)
    return [(v.encode(), f.encode(f.scan(at=when, venue_id=v, event_id=f"pol-{next(_n)}", temperature_c=37.1)))
            for v in VENUES]


def test_versions_published_reach_two_running_workers_scheduled_refused_and_rolled_back(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    create_topics(kafka_bootstrap, topic_prefix)
    env = worker_env
    now = time.time()
    v3 = hcs(env, "policy", "publish", str(policy_file(tmp_path, "v3", now - 3600)), "--note", "May rules")
    assert v3.exit_code == 0, v3.output
    second_env = {**env, "HCS_WEB_PORT": str(free_port()), "HCS_DATA_DIR": str(tmp_path / "data-2")}
    workers = [WorkerProcess(env, tmp_path / "worker-1.log").start(),
               WorkerProcess(second_env, tmp_path / "worker-2.log").start()]
    decisions_topic = name(topics.DECISIONS, topic_prefix)
    try:
        # v4, scheduled 20 s ahead: a lower fever threshold.
        v4_from = float(int(time.time()) + 20)
        published = hcs(env, "policy", "publish", str(policy_file(tmp_path, "v4", 0, fever_threshold_c=37.0)),
                        "--valid-from", rfc3339(v4_from), "--note", "stricter fever threshold")
        assert published.exit_code == 0, published.output
        wait_for_log(workers, "policy version v4, valid from")
        listed = hcs(env, "policy", "list").output.splitlines()
        assert [line.split()[0] for line in listed[1:]] == ["default-v1", "v3", "v4"]
        assert listed[2].split()[3:5] == ["topic", "current"] and listed[3].split()[3:5] == ["topic", "scheduled"]
        produce(kafka_bootstrap, name(topics.SCANS, topic_prefix), scans(v4_from - 1) + scans(v4_from + 1))

        # Refused: an invalid v5 (written past the command, which would refuse it), and a change of v3.
        policies = name(topics.POLICIES, topic_prefix)
        record = {"schema": "hcs.policy-version.v1", "version": "v5", "valid_from": rfc3339(now),
                  "published_at": rfc3339(now), "venue_types": {"scool": {"nat_window_hours": 24}}}
        rewrite = {"schema": "hcs.policy-version.v1", "version": "v3", "valid_from": rfc3339(now - 3600),
                   "published_at": rfc3339(time.time()), "defaults": {"fever_threshold_c": 36.0}}
        produce(kafka_bootstrap, policies, [(b"v5", orjson.dumps(record)), (b"v3", orjson.dumps(rewrite))])
        refused = hcs(env, "policy", "publish", str(policy_file(tmp_path, "v3", now - 3600, fever_threshold_c=36.0)))
        assert refused.exit_code == 1 and "version v3 is in force since" in refused.output

        while time.time() < v4_from + 2:
            time.sleep(0.5)
        produce(kafka_bootstrap, name(topics.SCANS, topic_prefix), scans(v4_from - 5))  # late: from before v4
        rolled = hcs(env, "policy", "rollback", "v3")
        assert rolled.exit_code == 0, rolled.output
        again = rolled.output.split()[1]
        assert again.startswith("v3-again-")
        wait_for_log(workers, f"policy version {again}, valid from")
        time.sleep(1.5)  # its valid_from is the whole second it was published in
        produce(kafka_bootstrap, name(topics.SCANS, topic_prefix), scans(time.time()))
        decisions = read(kafka_bootstrap, decisions_topic, lambda v: len(v) >= 4 * len(VENUES), timeout_s=60,
                         settle_s=1)
        alerts = read(kafka_bootstrap, name(topics.ALERTS, topic_prefix),
                      lambda v: len([a for a in v if a["kind"] == "POLICY_REJECTED"]) >= 2, timeout_s=30, settle_s=2)
        dead = read(kafka_bootstrap, name(topics.DLQ, topic_prefix), lambda v: len(v) >= 2, timeout_s=30, settle_s=1)
        metrics = [w.metrics_text() for w in workers]
    finally:
        for w in workers:
            w.stop()

    def judged(at: float) -> set[tuple[str, str]]:
        return {(d["policy_version"], d["decision"]) for d in decisions
                if datetime.fromisoformat(d["event_time"]).timestamp() == at}

    assert judged(v4_from - 1) == {("v3", "ALLOW")}  # 37.1 is no fever under v3 (37.3)
    assert judged(v4_from + 1) == {("v4", "RECHECK")}  # under v4 (37.0) it is, on every partition
    assert judged(v4_from - 5) == {("v3", "ALLOW")}  # read after v4 took effect, judged by its event time
    latest = max(datetime.fromisoformat(d["event_time"]).timestamp() for d in decisions)
    assert judged(latest) == {(again, "ALLOW")}  # v3's rules again
    assert len(decisions) == 4 * len(VENUES)
    # Both workers took part (each owns partitions) and judged by the same versions.
    assert all(f'hcs_policy_version_info{{version="{again}"}} 1.0' in m for m in metrics)
    assert all(re.search(r"^hcs_scans_total\{[^}]*\} [1-9]", m, re.M) for m in metrics)
    rejected = sorted((a for a in alerts if a["kind"] == "POLICY_REJECTED"), key=lambda a: a["details"]["version"])
    assert [(a["details"]["version"], a["severity"], a["district"]) for a in rejected] == [
        ("v3", "critical", "000000"), ("v5", "critical", "000000")]
    assert "venue_types.scool: unknown venue type" in rejected[1]["details"]["error"]
    assert "is in force since" in rejected[0]["details"]["error"]
    assert sorted((d["_key"], d["reason"], d["source_topic"]) for d in dead) == [
        ("v3", "SCHEMA_INVALID", policies), ("v5", "SCHEMA_INVALID", policies)]
    assert_valid("alert.v1", rejected)
    assert_valid("deadletter.v1", dead)
    assert_valid("decision.v1", decisions)
