"""Liveness, readiness and recovery progress of a real worker restarted on a state to recover."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.contract import topics
from streams.dev.localkafka import die_with_parent
from streams.dev.simulate import Simulator
from tests import factories as f
from tests.integration.kafka_io import create_topics, name, produce, read, running_worker

pytestmark = pytest.mark.integration

SCANS = 20_000


def probe(port: int, path: str) -> tuple[int, Any]:
    """(HTTP status, decoded body) of ``path``, or (0, None) while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except OSError:
        return 0, None
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode()


def test_a_restarted_worker_is_live_at_once_ready_only_once_its_tables_are_recovered_and_says_how_far_it_got(
        worker_env: dict[str, str], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    # Restarted so that it reads its changelogs whole: the in-memory store (as a worker with its
    # tables on disk does when its data dir is lost, or when it takes partitions over).
    worker_env = {**worker_env, "HCS_TABLE_STORE": "memory"}
    create_topics(kafka_bootstrap, topic_prefix)
    clock = (f.T0 + timedelta(milliseconds=5 * i) for i in range(10**9))
    records = [(key, value) for key, value, _ in Simulator(seed=5).records(SCANS, batch=100, clock=clock)]
    produce(kafka_bootstrap, name(topics.SCANS, topic_prefix), records)
    with running_worker(worker_env, tmp_path / "first.log"):
        read(kafka_bootstrap, name(topics.DECISIONS, topic_prefix), lambda v: len(v) >= SCANS * 0.9, timeout_s=120)

    port = int(worker_env["HCS_WEB_PORT"])
    log_path = tmp_path / "second.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "streams", "worker", "-l", "info"], env=worker_env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=die_with_parent)
    seen: list[tuple[int, int, Any]] = []  # (livez, readyz, readyz body)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            live, _ = probe(port, "/livez")
            ready, body = probe(port, "/readyz")
            seen.append((live, ready, body))
            if ready == 200:
                break
            time.sleep(0.05)
        log_at_ready = log_path.read_text(errors="replace")
    finally:
        proc.terminate()
        proc.wait(30)

    assert seen and seen[-1][1] == 200, log_path.read_text()[-3000:]
    recovering = [body for live, ready, body in seen if live == 200 and ready == 503]
    assert recovering, "never seen live but not ready"
    assert all(body["ready"] is False and body["checks"]["tables"]["ready"] is False for body in recovering)
    # While it recovers, /readyz says how far it got, per table.
    progress = [sum(t["total"] for t in body["checks"]["tables"]["tables"].values()) for body in recovering]
    assert max(progress) > 0, recovering[-1]
    assert seen[-1][2]["ready"] is True and seen[-1][2]["checks"]["tables"]["ready"] is True
    # The log says what it recovers, that it is done, and only then that it is ready.
    started = log_at_ready.index("recovering tables from their changelogs:")
    done = log_at_ready.index("tables recovered in ")
    ready_at = log_at_ready.index("worker ready: tables recovered")
    assert started < done < ready_at
    line = log_at_ready[done:].splitlines()[0]
    assert " of " in line and "records (100%)" in line, line
