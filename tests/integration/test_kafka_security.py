"""Every command that talks to Kafka reaches a SASL_SSL (SCRAM-SHA-512) listener with a test CA,
and a wrong password is one clear line and a non-zero exit, with no secret in any output."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.contract import topics
from streams.dev.localkafka import SecureListener, free_port
from tests.environment import local_broker
from tests.integration.kafka_io import WorkerProcess, name, read
from tests.tls import make_pki

pytestmark = pytest.mark.integration

USER, PASSWORD = "hcs-worker", "correct-horse-battery-staple-42"
WRONG = "wrong-password-never-printed-17"


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """(plaintext bootstrap, SASL_SSL bootstrap, CA file) of a broker of this test alone."""
    pki = make_pki(tmp_path / "pki")
    secure_port = free_port()
    listener = SecureListener(secure_port, pki.keystore, pki.keystore_password, ((USER, PASSWORD),))
    with local_broker(tmp_path / "broker", listener) as (_, bootstrap):
        yield bootstrap, f"127.0.0.1:{secure_port}", pki.ca_cert


def secure_env(worker_env: dict[str, str], bootstrap: str, ca: Path, password_file: Path) -> dict[str, str]:
    return {**worker_env, "HCS_BOOTSTRAP": bootstrap, "HCS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "HCS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "HCS_KAFKA_SASL_USERNAME": USER,
            "HCS_KAFKA_SASL_PASSWORD_FILE": str(password_file), "HCS_KAFKA_SSL_CAFILE": str(ca)}


def hcs(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_worker_simulate_and_tail_work_over_sasl_ssl_with_scram(
        secured: tuple[str, str, Path], worker_env: dict[str, str], topic_prefix: str, tmp_path: Path) -> None:
    plain, secure, ca = secured
    password_file = tmp_path / "kafka-password"
    password_file.write_text(PASSWORD + "\n")
    env = secure_env(worker_env, secure, ca, password_file)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()  # creates its topics over SASL_SSL
    try:
        sent = hcs(env, "simulate", "--count", "200", "--rate", "400", "--seed", "5")
        assert sent.returncode == 0, sent.stderr
        decisions = read(plain, name(topics.DECISIONS, topic_prefix), lambda v: len(v) >= 200, timeout_s=60,
                         settle_s=2)
        shown = hcs(env, "tail", "--from-beginning", "--max", "1", "--timeout", "30", "--no-color")
        versions = hcs(env, "policy", "list")
        listed = hcs(env, "findings")
    finally:
        worker.stop()
    assert len(decisions) == len({d["event_id"] for d in decisions}) == 200  # every scan, once
    assert shown.returncode == 0 and shown.stdout.count("\n") == 1, shown.stderr
    assert versions.returncode == 0 and versions.stdout.splitlines()[1].split()[0] == "default-v1", versions.stderr
    assert listed.returncode == 0 and listed.stdout.startswith("finding "), listed.stderr  # the simulator's
    everything = worker.log_path.read_text() + sent.stdout + sent.stderr + shown.stdout + shown.stderr
    everything += versions.stdout + versions.stderr + listed.stdout + listed.stderr
    assert PASSWORD not in everything
    assert "[ERROR]" not in worker.log_path.read_text(), worker.log_tail()


@pytest.mark.parametrize("command", [
    ["worker", "-l", "info"], ["simulate", "--count", "5"], ["tail", "--max", "1", "--timeout", "20"],
    ["findings"], ["policy", "list"]])
def test_a_wrong_password_is_one_clear_line_and_a_non_zero_exit(
        command: list[str], secured: tuple[str, str, Path], worker_env: dict[str, str], tmp_path: Path) -> None:
    _, secure, ca = secured
    password_file = tmp_path / "kafka-password"
    password_file.write_text(WRONG)
    done = hcs(secure_env(worker_env, secure, ca, password_file), *command, timeout=60)
    # simulate's progress bar shows its label first; nothing else may be printed
    lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("scans -> ")]
    assert done.returncode == 1, done.stderr[-2000:]
    assert lines == [f"hcs: Kafka at {secure} (SASL_SSL as {USER!r} (SCRAM-SHA-512)) refused the credentials: "
                     "authentication failed (check the user and the password file)"], done.stderr[-2000:]
    assert WRONG not in done.stdout + done.stderr and "Traceback" not in done.stderr
