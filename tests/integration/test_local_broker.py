"""``hcs broker``: idempotent start/stop of a real local broker, and clear one-line failures."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from streams.dev.localkafka import free_port, serves_clients

pytestmark = pytest.mark.integration


def hcs(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams", *args], capture_output=True, text=True,
                          env=env if env is not None else dict(os.environ), timeout=180, check=False)


def coordinator_of_a_new_group(bootstrap: str) -> int:
    """One FindCoordinator request, no retry: fails while the broker cannot coordinate groups yet."""
    async def ask() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            return int(await admin.find_coordinator("a-new-group"))
        finally:
            await admin.close()
    return asyncio.run(ask())


def test_start_twice_then_stop_twice(tmp_path: Path, kafka_bootstrap: str) -> None:
    # kafka_bootstrap: the jars are resolved (or this is skipped where no broker can run).
    state, port = str(tmp_path / "broker"), free_port()
    first = hcs("broker", "start", "--port", str(port), "--state-dir", state)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"started: broker: running at 127.0.0.1:{port}")
    # Ready for consumers the moment start returns, so a worker's first group request succeeds.
    assert coordinator_of_a_new_group(f"127.0.0.1:{port}") == 1

    second = hcs("broker", "start", "--port", str(port), "--state-dir", state)
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("already running:")
    assert hcs("broker", "status", "--state-dir", state).returncode == 0

    assert hcs("broker", "stop", "--state-dir", state).stdout.strip() == "broker: stopped"
    assert not serves_clients(f"127.0.0.1:{port}", timeout_s=2)
    again = hcs("broker", "stop", "--state-dir", state)
    assert (again.returncode, again.stdout.strip()) == (0, "broker: not running")
    status = hcs("broker", "status", "--state-dir", state)
    assert (status.returncode, status.stdout.strip()) == (3, "broker: not running")


def test_start_without_java_fails_with_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(tmp_path)  # nothing on it
    result = hcs("broker", "start", "--state-dir", str(tmp_path / "b"), env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hcs: java not found: install a Java 17+ runtime")


def test_start_without_maven_and_no_cached_jars_says_so(tmp_path: Path) -> None:
    java = shutil.which("java")
    if java is None:
        pytest.skip("needs java on PATH") if os.environ.get("CI") != "true" else pytest.fail("java missing in CI")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    assert java is not None
    (bin_dir / "java").symlink_to(os.path.realpath(java))
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env.update(PATH=str(bin_dir), HCS_CACHE_DIR=str(tmp_path / "empty-cache"))
    result = hcs("broker", "start", "--port", str(free_port()), "--state-dir", str(tmp_path / "b"), env=env)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("hcs: mvn not found: install Apache Maven")
    assert len(result.stderr.strip().splitlines()) == 1


def test_start_on_a_taken_port_names_the_port(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = hcs("broker", "start", "--port", str(port), "--state-dir", str(tmp_path / "b"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"hcs: port {port} on 127.0.0.1 is already in use: stop what holds it or choose another "
        "with --port (or set HCS_BOOTSTRAP to use that broker)")


def test_a_broker_owned_by_a_process_stops_when_that_process_is_killed(tmp_path: Path, kafka_bootstrap: str) -> None:
    import signal
    import time

    owner = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from streams.dev.localkafka import LocalKafka, free_port; "
        f"s = LocalKafka(Path({str(tmp_path / 'owned')!r}), owned=True).start(port=free_port()); "
        "print(s.pid, s.port, flush=True); time.sleep(600)")], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    pid, port = map(int, owner.stdout.readline().split())
    assert serves_clients(f"127.0.0.1:{port}")
    owner.send_signal(signal.SIGKILL)  # no teardown runs
    owner.wait(10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
