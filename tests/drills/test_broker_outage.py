"""Fault drill: the broker is killed with SIGKILL under a running worker and restarted.

The worker stays up, says once that it lost Kafka and once that it is back (it logged thousands
of client errors per outage before), and every scan is still decided exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from streams import topics
from streams.codec import decode_scans
from streams.localkafka import LocalKafka
from streams.models import ScanEvent
from streams.simulate import Simulator
from tests import factories as f
from tests.environment import local_broker
from tests.integration.kafka_io import WorkerProcess, create_topics, name, produce, read

pytestmark = [pytest.mark.integration, pytest.mark.drill]

OUTAGE_S = 12


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[LocalKafka, int]]:
    """A broker of this test alone (the session's broker must not go down)."""
    with local_broker(tmp_path / "broker") as (kafka, bootstrap):
        yield kafka, int(bootstrap.rsplit(":", 1)[1])


def test_a_broker_killed_and_restarted_under_a_worker_costs_no_scan_and_two_log_lines(
        own_broker: tuple[LocalKafka, int], worker_env: dict[str, str], topic_prefix: str, tmp_path: Path) -> None:
    kafka, port = own_broker
    bootstrap = f"127.0.0.1:{port}"
    env = {**worker_env, "HCS_BOOTSTRAP": bootstrap}
    create_topics(bootstrap, topic_prefix)
    sim = Simulator(seed=31, venues_per_district=4, people=300)
    clock = (f.T0 + timedelta(seconds=i // 4) for i in range(10**9))
    records = [(key, value) for key, value, _ in sim.records(6000, batch=1, clock=clock)]
    expected = {i.event_id for _, v in records for i in decode_scans(v) if isinstance(i, ScanEvent)}
    scans, decisions_topic = name(topics.SCANS, topic_prefix), name(topics.DECISIONS, topic_prefix)

    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        produce(bootstrap, scans, records[:3000])
        read(bootstrap, decisions_topic, lambda v: len(v) >= 1000, timeout_s=60)
        pid = kafka.status().pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        time.sleep(OUTAGE_S)
        down = worker.metrics_text()
        kafka.start(port=port)
        produce(bootstrap, scans, records[3000:])
        decisions = read(bootstrap, decisions_topic, lambda v: expected <= {d["event_id"] for d in v},
                         timeout_s=180, settle_s=3)
        time.sleep(4)  # the "back" line comes after a few quiet seconds
        up = worker.metrics_text()
        assert worker.proc is not None and worker.proc.poll() is None  # never stopped
    finally:
        worker.stop()

    decided = Counter(d["event_id"] for d in decisions)
    assert set(decided) == expected and max(decided.values()) == 1
    log = worker.log_path.read_text(errors="replace")
    errors = [line for line in log.splitlines() if "[ERROR]" in line]
    print(f"{len(errors)} error lines in a {OUTAGE_S} s outage: {errors[:5]}")
    assert log.count("lost Kafka at") == 1 and log.count("is reachable again after") == 1
    assert len(errors) <= 5, errors
    assert "hcs_kafka_reachable 0.0" in down and "hcs_kafka_reachable 1.0" in up
    assert "hcs_kafka_outages_total 1.0" in up
    assert "hcs_processing_errors_total{" not in up


def test_the_alerts_bridge_says_once_that_the_broker_is_gone_and_stops_on_sigint_while_it_is(
        own_broker: tuple[LocalKafka, int], worker_env: dict[str, str], topic_prefix: str, tmp_path: Path) -> None:
    kafka, port = own_broker
    bootstrap = f"127.0.0.1:{port}"
    env = {**worker_env, "HCS_BOOTSTRAP": bootstrap, "HCS_ALERTMANAGER_URL": "http://127.0.0.1:9"}
    create_topics(bootstrap, topic_prefix)
    bridge = WorkerProcess(env, tmp_path / "bridge.log", command="alerts-bridge").start()
    try:
        pid = kafka.status().pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        time.sleep(6)
        started = time.monotonic()
        code = bridge.stop(signal.SIGINT, timeout_s=20)  # hung for a minute and more before
        took = time.monotonic() - started
    finally:
        bridge.stop(signal.SIGKILL)
    log = bridge.log_path.read_text(errors="replace")
    errors = [line for line in log.splitlines() if "[ERROR]" in line]
    assert code == 0 and took < 10, (code, took, bridge.log_tail(30))
    assert log.count("lost Kafka at") == 1
    assert len(errors) <= 5, errors


def test_the_alerts_bridge_waits_for_a_broker_not_up_yet_in_one_line_and_stops_on_sigint(
        worker_env: dict[str, str], tmp_path: Path) -> None:
    from streams.localkafka import free_port

    env = {**worker_env, "HCS_BOOTSTRAP": f"127.0.0.1:{free_port()}", "HCS_ALERTMANAGER_URL": "http://127.0.0.1:9"}
    log_path = tmp_path / "bridge.log"
    bridge = WorkerProcess(env, log_path, command="alerts-bridge")
    with open(log_path, "ab") as log:
        bridge.proc = subprocess.Popen([sys.executable, "-m", "streams", "alerts-bridge", "-l", "info"], env=env,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        time.sleep(8)  # several retries
        assert bridge.proc.poll() is None  # it waits; Faust alone exited at once with a traceback
        code = bridge.stop(signal.SIGINT, timeout_s=10)
    finally:
        bridge.stop(signal.SIGKILL)
    lines = log_path.read_text(errors="replace").splitlines()
    assert code == 0 and len(lines) == 1 and "127.0.0.1" in lines[0] and "retrying" in lines[0], lines
