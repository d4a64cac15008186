"""`hcs run`'s own pieces, without a broker: it takes "ready" only from its own worker and says
what that worker waits for; `hcs reset` clears the demo's state and nothing else."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from streams import cli
from streams.dev import local
from streams.dev.localkafka import free_port
from streams.kafka.readiness import Readiness, TableProgress, tables_pending


@contextmanager
def readyz_page(body: dict[str, Any], status: int = 200) -> Iterator[str]:
    """A /readyz on a free port answering ``body``: another process's worker."""
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_ready_page_of_another_process_is_not_this_runs_worker() -> None:
    # The finding: a second `make run` printed "worker ready" from the first run's /readyz.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5); raise SystemExit(1)"])
    with (readyz_page({"ready": True, "pid": child.pid + 1, "checks": {}}) as base,
          pytest.raises(SystemExit, match="the worker exited with code 1")):
        local._wait_until_ready(base, child, timeout_s=20)


def test_its_own_worker_ready_is_ready_and_while_not_it_says_what_is_pending(
        capsys: pytest.CaptureFixture[str]) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        waiting = {"ready": False, "pid": child.pid, "waiting_for": ["tables", "timers"], "checks": {
            "tables": {"ready": False, "recovering": False,
                       "pending": "a rebalance of its consumer group: partitions are being assigned"},
            "timers": {"ready": False, "waiting_for": ["tables"]}}}
        with readyz_page(waiting, 503) as base, pytest.raises(SystemExit, match="not ready at"):
            local._wait_until_ready(base, child, timeout_s=1.5, every_s=0.5)
        said = capsys.readouterr().out
        assert ("hcs: worker not ready yet: tables (a rebalance of its consumer group: partitions are being "
                "assigned); timers (waits for tables)") in said
        with readyz_page({"ready": True, "pid": child.pid, "checks": {}}) as base:
            local._wait_until_ready(base, child, timeout_s=10)  # returns
    finally:
        child.kill()
        child.wait()


def test_readyz_names_its_process_and_every_check_it_waits_for() -> None:
    readiness = Readiness(pid=4242)
    readiness.add("tables", lambda: (False, {"pending": "its partitions"}))
    readiness.add("view register", lambda: (True, {}))
    readiness.add("timers", lambda: (False, {"waiting_for": ["tables"]}))
    ready, body = readiness.status()
    assert not ready and body["pid"] == 4242 and body["waiting_for"] == ["tables", "timers"]
    readiness.checks["tables"] = lambda: (True, {})
    readiness.checks["timers"] = lambda: (True, {"waiting_for": []})
    assert readiness.status()[1]["waiting_for"] == [] and readiness.status()[0]


def test_the_tables_check_says_what_it_waits_for_in_each_state() -> None:
    progress = {"windows": TableProgress(40, 100)}
    assert tables_pending(True, False, False, progress) is None
    assert tables_pending(False, True, True, progress) == (
        "recovering its tables from their changelogs: 40 of 100 records (40%): windows 40 of 100 records (40%)")
    assert "rebalance" in (tables_pending(False, False, True, {}) or "")
    # "not recovering, everything read" — and still not ready: it holds no partition yet.
    assert "has not joined its consumer group yet" in (tables_pending(False, False, False, {}) or "")


def demo_state(data_dir: Path) -> None:
    for folder in ("broker/data", "worker/tables", "alerts-bridge"):
        (data_dir / folder).mkdir(parents=True)
        (data_dir / folder / "f").write_text("x")
    (data_dir / "instance-id").write_text("abc")
    (data_dir / "local-20261206-120000.json").write_text("{}")
    (data_dir / "notes.txt").write_text("the operator's own")


def test_reset_clears_the_demos_state_and_nothing_else(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    demo_state(data_dir)
    result = CliRunner().invoke(cli.cli, ["reset"], env={"HCS_DATA_DIR": str(data_dir)})
    assert result.exit_code == 0, result.output
    assert result.output == (f"hcs: cleared {data_dir}: alerts-bridge, broker, instance-id, "
                             "local-20261206-120000.json, worker\n")
    assert sorted(p.name for p in data_dir.iterdir() if not p.name.endswith(".lock")) == ["notes.txt"]
    again = CliRunner().invoke(cli.cli, ["reset"], env={"HCS_DATA_DIR": str(data_dir)})
    assert again.exit_code == 0 and again.output == f"hcs: nothing to clear in {data_dir}\n"


def test_reset_is_refused_while_a_run_holds_the_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    demo_state(data_dir)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                               "from pathlib import Path\n"
                               "from streams.settings.datadir import hold\n"
                               f"hold(Path({str(data_dir)!r}), 'hcs run', 'x')\n"
                               "print('held', flush=True)\n"
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        result = CliRunner().invoke(cli.cli, ["reset"], env={"HCS_DATA_DIR": str(data_dir)})
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code != 0
    assert f"another hcs run (pid {holder.pid}) uses {data_dir}: stop it first" in result.output
    assert (data_dir / "broker" / "data" / "f").exists() and (data_dir / "instance-id").exists()
