"""``hcs run``: the whole system on one machine, for trying it out and for demos."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from streams.localkafka import LocalKafka, die_with_parent
from streams.settings import ENV_BOOTSTRAP, Settings


def _wait_until_ready(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 600.0,
                      every_s: float = 5.0) -> None:
    """Wait for the worker's ``/readyz``; while it recovers its tables, say how far it got."""
    deadline = time.monotonic() + timeout_s
    said = 0.0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"hcs: the worker exited with code {proc.returncode}; see its log above")
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2):
                return
        except urllib.error.HTTPError as exc:  # 503: not ready yet
            body = json.loads(exc.read() or b"{}")
            tables = body.get("checks", {}).get("tables", {}).get("tables", {})
            read, total = sum(t["read"] for t in tables.values()), sum(t["total"] for t in tables.values())
            if total and time.monotonic() - said >= every_s:
                said = time.monotonic()
                print(f"hcs: worker recovering its tables: {read:,} of {total:,} records", flush=True)
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"hcs: the worker was not ready at {base}/readyz within {timeout_s:.0f}s")


MANAGED = 100  # key personnel on the simulated register: breaches and restrictions show in `hcs tail`


def run_local(rate: float, port: int) -> None:
    settings = Settings.from_env()
    env = dict(os.environ)
    kafka: LocalKafka | None = None
    if not os.environ.get(ENV_BOOTSTRAP):
        kafka = LocalKafka(settings.data_dir / "broker", owned=True)
        status = kafka.start(port=port)
        print(f"hcs: {status.describe()}", flush=True)
        env[ENV_BOOTSTRAP] = status.bootstrap or settings.bootstrap
    children: list[subprocess.Popen[bytes]] = []
    try:
        worker = subprocess.Popen([sys.executable, "-m", "streams", "worker", "-l", "warn"], env=env,
                                  preexec_fn=die_with_parent)
        children.append(worker)
        base = f"http://127.0.0.1:{settings.web_port}"
        _wait_until_ready(base, worker)
        print(f"hcs: worker ready; metrics at {base}/metrics", flush=True)
        children.append(subprocess.Popen(
            [sys.executable, "-m", "streams", "simulate", "--rate", str(rate), "--managed", str(MANAGED), "--quiet"],
            env=env,
            preexec_fn=die_with_parent))
        print(f"hcs: simulating {rate:g} scans/s; `hcs tail` shows alerts; Ctrl-C stops", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGINT if child is not children[0] else signal.SIGTERM)
        for child in children:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
        if kafka is not None:
            kafka.stop()
            print("hcs: broker stopped", flush=True)
