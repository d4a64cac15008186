"""Fault drill: the broker is killed with SIGKILL under a running worker and restarted.

The worker stays up, says once that it lost Kafka and once that it is back (it logged thousands
of client errors per outage before), and every scan is still decided exactly once. With the
broker gone again, SIGTERM stops it within a bounded time.
"""

from __future__ import annotations

import asyncio
import contextlib
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

from streams.contract import topics
from streams.contract.codec import decode_scans
from streams.contract.models import ScanEvent
from streams.dev.localkafka import LocalKafka
from streams.dev.simulate import Simulator
from streams.kafka.patches.app import STOP_DEADLINE_S
from tests import factories as f
from tests.environment import local_broker
from tests.integration.kafka_io import WorkerProcess, child_setup, create_topics, name, produce, read

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
        # Kubernetes, compose and systemd stop with SIGTERM first: sent one after its broker died
        # again, a worker hung in its transactional producer's flush for good (5 minutes and more).
        # It stops within STOP_DEADLINE_S now, saying so; what it had not committed is read again
        # by its successor, exactly once (a stop past the deadline is a crash, as the crash drill's).
        pid = kafka.status().pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        time.sleep(5)  # it has lost Kafka again, and its ticks' writes wait unacknowledged
        started = time.monotonic()
        code = worker.stop(signal.SIGTERM, timeout_s=30)
        took = time.monotonic() - started
    finally:
        worker.stop(signal.SIGKILL)

    decided = Counter(d["event_id"] for d in decisions)
    assert set(decided) == expected and max(decided.values()) == 1
    log = worker.log_path.read_text(errors="replace")
    errors = [line for line in log.splitlines() if "[ERROR]" in line]
    print(f"{len(errors)} error lines in a {OUTAGE_S} s outage: {errors[:5]}")
    assert log.count("lost Kafka at") == 2 and log.count("is reachable again after") == 1
    assert code == 0 and took < STOP_DEADLINE_S + 3, (code, took, worker.log_tail(20))
    assert log.count("stopping on SIGTERM") == 1 and "Traceback" not in log, worker.log_tail(20)
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
    assert log.count("stopping on SIGINT") == 1 and "-INT-" not in log  # one line, not mode's banner
    assert len(errors) <= 5, errors


def test_the_alerts_bridge_waits_for_a_broker_not_up_yet_in_one_line_and_stops_on_sigint(
        worker_env: dict[str, str], tmp_path: Path) -> None:
    from streams.dev.localkafka import free_port

    env = {**worker_env, "HCS_BOOTSTRAP": f"127.0.0.1:{free_port()}", "HCS_ALERTMANAGER_URL": "http://127.0.0.1:9"}
    log_path = tmp_path / "bridge.log"
    bridge = WorkerProcess(env, log_path, command="alerts-bridge")
    with open(log_path, "ab") as log:
        bridge.proc = subprocess.Popen([sys.executable, "-m", "streams", "alerts-bridge", "-l", "info"], env=env,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                       preexec_fn=child_setup)
    try:
        time.sleep(8)  # several retries
        assert bridge.proc.poll() is None  # it waits; Faust alone exited at once with a traceback
        code = bridge.stop(signal.SIGINT, timeout_s=10)
    finally:
        bridge.stop(signal.SIGKILL)
    lines = log_path.read_text(errors="replace").splitlines()
    assert code == 0 and len(lines) == 1 and "127.0.0.1" in lines[0] and "retrying" in lines[0], lines


def test_simulate_and_tail_say_once_that_the_broker_is_gone_and_once_that_it_is_back_and_lose_nothing(
        own_broker: tuple[LocalKafka, int], worker_env: dict[str, str], topic_prefix: str, tmp_path: Path) -> None:
    kafka, port = own_broker
    bootstrap = f"127.0.0.1:{port}"
    env = {**worker_env, "HCS_BOOTSTRAP": bootstrap}
    create_topics(bootstrap, topic_prefix)

    def command(*args: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
        out, err = tmp_path / f"{args[0]}.out", tmp_path / f"{args[0]}.err"
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            proc = subprocess.Popen([sys.executable, "-m", "streams", *args], env=env, stdout=stdout,
                                    stderr=stderr, start_new_session=True, preexec_fn=child_setup)
        return proc, out, err

    simulate, sim_out, sim_err = command("simulate", "--count", "3000", "--rate", "200", "--quiet", "--no-entries")
    tail, _, tail_err = command("tail", "--timeout", "120")
    try:
        time.sleep(4)
        pid = kafka.status().pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        time.sleep(OUTAGE_S)
        kafka.start(port=port)
        assert simulate.wait(120) == 0, sim_err.read_text()
        time.sleep(6)  # the "back" line comes after a few quiet seconds
        os.killpg(tail.pid, signal.SIGINT)
        assert tail.wait(20) == 0, tail_err.read_text()
    finally:
        for proc in (simulate, tail):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    summary = sim_out.read_text()
    records = int(summary.split(" records ")[1].split(",")[0])
    assert "undelivered" not in summary, summary
    for err in (sim_err, tail_err):
        lines = err.read_text().splitlines()
        assert len(lines) == 2 and "lost Kafka at" in lines[0] and "is reachable again" in lines[1], lines
    # Every record the simulator made was delivered (some maybe twice; malformed ones included).
    assert sum(end_offsets(bootstrap, name(topics.SCANS, topic_prefix), topics.SCANS.partitions).values()) >= records


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run() -> dict[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await consumer.start()
        try:
            parts = [TopicPartition(topic, p) for p in range(partitions)]
            return {tp.partition: offset for tp, offset in (await consumer.end_offsets(parts)).items()}
        finally:
            # A consumer stopped right after its start may raise its own task's cancellation
            # (aiokafka issue 647): the offsets are in hand by then.
            with contextlib.suppress(asyncio.CancelledError):
                await consumer.stop()

    return asyncio.run(run())
