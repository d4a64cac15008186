"""`hcs tail` and `hcs simulate` started before their cluster wait for it as the worker does: one
line while it cannot be reached, one once it answers, then they do their work."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.contract import topics
from streams.dev.localkafka import LocalKafka, free_port
from tests.integration.kafka_io import create_topics, name, read

pytestmark = pytest.mark.integration


def test_simulate_and_tail_started_before_the_broker_wait_for_it(
        worker_env: dict[str, str], topic_prefix: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**worker_env, "HCS_BOOTSTRAP": f"127.0.0.1:{port}"}
    simulate = subprocess.Popen([sys.executable, "-m", "streams", "simulate", "--count", "20", "--seed", "2",
                                 "--ack-after", "0", "--no-findings"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    tail = subprocess.Popen([sys.executable, "-m", "streams", "tail", "--timeout", "5", "--max", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kafka = LocalKafka(tmp_path / "broker", owned=True)
    try:
        time.sleep(4)  # both are waiting
        assert simulate.poll() is None and tail.poll() is None
        kafka.start(port=port)
        create_topics(f"127.0.0.1:{port}", topic_prefix)
        out, err = simulate.communicate(timeout=120)
        assert simulate.returncode == 0, err
        _, tail_err = tail.communicate(timeout=120)
        assert tail.returncode == 0, tail_err
        scans = read(f"127.0.0.1:{port}", name(topics.SCANS, topic_prefix), lambda v: len(v) >= 20, timeout_s=30)
    finally:
        for proc in (simulate, tail):
            if proc.poll() is None:
                proc.kill()
        kafka.stop()
    assert len(scans) >= 20 and "sent (run" in out
    for said in (err, tail_err):
        assert said.count("is unreachable; retrying") == 1, said
        assert said.count("is reachable again") == 1, said
        assert "Traceback" not in said and "AddressFamily" not in said
