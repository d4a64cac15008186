"""A worker started while its cluster is away answers its probes at once — alive, not ready,
waiting for Kafka — so a liveness probe never restarts it for an outage; a stop ends it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from streams.dev.localkafka import free_port

pytestmark = pytest.mark.integration


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def test_a_worker_waiting_for_its_cluster_is_alive_and_not_ready(worker_env: dict[str, str], tmp_path: Path) -> None:
    env = {**worker_env, "HCS_BOOTSTRAP": f"127.0.0.1:{free_port()}"}  # nobody there
    base = f"http://127.0.0.1:{env['HCS_WEB_PORT']}"
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - the child's
    proc = subprocess.Popen([sys.executable, "-m", "streams", "worker"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while get(f"{base}/livez")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert get(f"{base}/livez") == (200, b"ok\n")
        status, body = get(f"{base}/readyz")
        waiting = json.loads(body)
        assert status == 503 and waiting["waiting_for"] == ["kafka"] and waiting["ready"] is False
        assert waiting["checks"]["kafka"]["ready"] is False and waiting["checks"]["tables"]["ready"] is False
        time.sleep(3)
        assert proc.poll() is None and get(f"{base}/livez")[0] == 200  # still waiting, still alive
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        assert time.monotonic() - began < 5
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    said = (tmp_path / "worker.log").read_text()
    assert said.count("is unreachable; retrying") == 1 and "Traceback" not in said, said
