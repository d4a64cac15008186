"""Real Prometheus and Alertmanager servers (Debian's binaries) on loopback, for tests."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from streams.dev.localkafka import die_with_parent, free_port
from tests.environment import tool


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


class Server:
    """A server process on 127.0.0.1 that stops with the test."""

    def __init__(self, args: list[str], port: int, log: Path, ready_path: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=die_with_parent)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{args[0]} exited: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + ready_path, timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"{args[0]} not ready: {log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_prometheus(tmp: Path, targets: list[str], rule_files: list[Path]) -> Server:
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [{"job_name": "hcs-worker", "static_configs": [{"targets": targets}]}],
    }))
    return Server([tool("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                   f"--web.listen-address=127.0.0.1:{port}"], port, tmp / "prometheus.log", "/-/ready")


def query(server: Server, expr: str) -> list[dict[str, Any]]:
    data = get_json(f"{server.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert data["status"] == "success", data
    return list(data["data"]["result"])


def start_alertmanager(tmp: Path, config: Path, port: int | None = None) -> Server:
    port = port or free_port()
    return Server([tool("prometheus-alertmanager", "alertmanager"), f"--config.file={config}",
                   f"--storage.path={tmp / 'am-data'}", f"--web.listen-address=127.0.0.1:{port}",
                   "--cluster.listen-address="], port, tmp / "alertmanager.log", "/-/ready")
