"""One run per data dir: a second worker, or a second `hcs run`, on a data dir in use is refused
in one line naming the process that holds it (they fenced each other's producer, or stopped the
other's broker); another data dir and web port run beside it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.dev.localkafka import free_port

pytestmark = pytest.mark.integration


def started(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "streams", *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def test_a_second_worker_or_run_on_a_data_dir_in_use_is_refused(worker_env: dict[str, str], tmp_path: Path) -> None:
    env = {**worker_env, "HCS_BOOTSTRAP": f"127.0.0.1:{free_port()}"}  # no cluster: they hold the dir, waiting
    first = started(["worker"], env, tmp_path / "first.log")
    run_env = {**env, "HCS_WEB_PORT": str(free_port()), "HCS_DATA_DIR": str(tmp_path / "run")}
    run = started(["run"], run_env, tmp_path / "run.log")
    try:
        time.sleep(4)
        assert first.poll() is None and run.poll() is None, (tmp_path / "run.log").read_text()
        second = subprocess.run([sys.executable, "-m", "streams", "worker"], capture_output=True, text=True,
                                env={**env, "HCS_WEB_PORT": str(free_port())}, timeout=60)
        assert second.returncode == 1 and second.stderr.count("\n") == 1, second.stderr
        assert f"another hcs worker (pid {first.pid}) uses" in second.stderr
        again = subprocess.run([sys.executable, "-m", "streams", "run"], capture_output=True, text=True,
                               env={**run_env, "HCS_WEB_PORT": str(free_port())}, timeout=60)
        assert again.returncode == 1 and f"another hcs run (pid {run.pid}) uses" in again.stderr, again.stderr
        # On purpose, beside it: its own data dir and web port.
        beside = started(["worker"], {**env, "HCS_WEB_PORT": str(free_port()),
                                      "HCS_DATA_DIR": str(tmp_path / "data-2")}, tmp_path / "beside.log")
        time.sleep(3)
        assert beside.poll() is None, (tmp_path / "beside.log").read_text()
        beside.send_signal(signal.SIGTERM)
        beside.wait(10)
    finally:
        for proc in (first, run):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(15)


def test_a_worker_whose_producer_is_fenced_exits_non_zero_in_one_line(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    """Another process with this worker's transactional id (its data dir copied, or a second run
    on it before the lock) fences its producer: it exits at once, code 3, in one line; it stayed a
    zombie before (/readyz 200, judging nothing)."""
    import asyncio
    import os

    from aiokafka import AIOKafkaProducer

    from streams.contract import topics
    from streams.dev.simulate import Simulator
    from streams.kafka.cluster import transactional_id
    from streams.kafka.patches.fences import EXIT_FENCED
    from streams.settings import Settings
    from tests.integration.kafka_io import WorkerProcess, create_topics, name, produce, read

    create_topics(kafka_bootstrap, topic_prefix)
    records = [(key, value) for key, value, _ in Simulator(seed=8).records(200, batch=1)]
    scans = name(topics.SCANS, topic_prefix)
    worker = WorkerProcess(worker_env, tmp_path / "worker.log").start()
    try:
        produce(kafka_bootstrap, scans, records[:100])
        read(kafka_bootstrap, name(topics.DECISIONS, topic_prefix), lambda v: len(v) >= 50, timeout_s=60)
        settings = Settings.from_env(worker_env)

        async def fence() -> None:
            other = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=transactional_id(settings))
            await other.start()  # its InitProducerId bumps the epoch: the worker's producer is fenced
            await other.stop()

        asyncio.run(fence())
        produce(kafka_bootstrap, scans, records[100:])
        assert worker.proc is not None
        code = worker.proc.wait(30)
    finally:
        if worker.proc is not None and worker.proc.poll() is None:
            os.killpg(worker.proc.pid, signal.SIGKILL)
    log = worker.log_path.read_text(errors="replace")
    assert code == EXIT_FENCED, "\n".join(line for line in log.splitlines() if "[ERROR]" in line or "[WARNING]" in line)
    assert log.count("fenced: another worker took this worker's transactional id") == 1
    assert "Traceback" not in log and "We experienced a crash" not in log
