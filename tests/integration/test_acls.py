"""Who may read and write what, on a real KRaft broker with the StandardAuthorizer: `hcs acl apply`
makes the roles of deploy/kafka/acls.toml the cluster's ACLs (idempotently); each role can do
what it needs and is refused a sample of what it must not; nobody but the worker and the
operator reads scans; the worker runs end to end as `worker` fed by a device as `device`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context

from streams.contract import topics
from streams.dev.localkafka import SecureListener, free_port
from streams.ops.acl import ROLES
from tests import factories as f
from tests.environment import local_broker
from tests.integration.kafka_io import WorkerProcess, name, read
from tests.tls import make_pki

pytestmark = pytest.mark.integration
USERS = ("admin", *ROLES)


def password(user: str) -> str:
    return f"{user}-secret-{len(user)}"


@pytest.fixture
def authorized(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """(plaintext bootstrap, SASL_SSL bootstrap, CA file) of a broker with ACLs enforced."""
    pki = make_pki(tmp_path / "pki")
    port = free_port()
    listener = SecureListener(port, pki.keystore, pki.keystore_password, tuple((u, password(u)) for u in USERS),
                              super_users=("admin",))
    with local_broker(tmp_path / "broker", listener) as (_, bootstrap):
        yield bootstrap, f"127.0.0.1:{port}", pki.ca_cert


def role_env(base: dict[str, str], secure: str, ca: Path, user: str, tmp: Path) -> dict[str, str]:
    secret = tmp / f"{user}.password"
    secret.write_text(password(user) + "\n")
    return {**base, "HCS_BOOTSTRAP": secure, "HCS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "HCS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "HCS_KAFKA_SASL_USERNAME": user,
            "HCS_KAFKA_SASL_PASSWORD_FILE": str(secret), "HCS_KAFKA_SSL_CAFILE": str(ca)}


def hcs(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def client(secure: str, ca: Path, user: str) -> dict[str, Any]:
    return {"bootstrap_servers": secure, "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": user, "sasl_plain_password": password(user),
            "ssl_context": create_ssl_context(cafile=str(ca))}


async def can_write(secure: str, ca: Path, user: str, topic: str) -> bool:
    producer = AIOKafkaProducer(**client(secure, ca, user), request_timeout_ms=8000)
    await producer.start()
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, b"{}", key=b"k"), 10)
        return True
    except (KafkaError, TimeoutError):
        return False
    finally:
        await producer.stop()


async def can_read(secure: str, ca: Path, user: str, topic: str) -> bool:
    consumer = AIOKafkaConsumer(**client(secure, ca, user), group_id=None, enable_auto_commit=False,
                                request_timeout_ms=8000)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await asyncio.wait_for(consumer.beginning_offsets([tp]), 10)
        await asyncio.wait_for(consumer.getmany(tp, timeout_ms=1000), 10)
        return True
    except (KafkaError, TimeoutError):
        return False
    finally:
        await consumer.stop()


def test_each_role_may_do_what_it_needs_and_is_refused_the_rest(
        authorized: tuple[str, str, Path], worker_env: dict[str, str], topic_prefix: str, tmp_path: Path) -> None:
    plain, secure, ca = authorized
    admin = role_env(worker_env, secure, ca, "admin", tmp_path)
    applied = hcs(admin, "acl", "apply")
    assert applied.returncode == 0 and " created, 0 deleted" in applied.stdout, applied.stdout + applied.stderr
    again = hcs(admin, "acl", "apply")
    assert again.returncode == 0 and ": 0 created, 0 deleted" in again.stdout, again.stdout + again.stderr
    planned = hcs(admin, "acl", "plan")
    assert planned.returncode == 0 and all(line.startswith("= ") for line in planned.stdout.splitlines())

    # The worker, as `worker`, creates its topics and judges what a device sends as `device`.
    worker = WorkerProcess(role_env(worker_env, secure, ca, "worker", tmp_path), tmp_path / "worker.log").start()
    try:
        sent = hcs(role_env(worker_env, secure, ca, "device", tmp_path), "simulate", "--count", "50", "--rate", "200",
                   "--no-findings", "--ack-after", "0", "--seed", "3")
        assert sent.returncode == 0, sent.stderr
        decisions = read(plain, name(topics.DECISIONS, topic_prefix), lambda v: len(v) >= 50, timeout_s=60)
        assert len({d["event_id"] for d in decisions}) == 50
    finally:
        worker.stop()
    assert "Authorization" not in worker.log_path.read_text(), worker.log_tail()

    def topic(spec: topics.TopicSpec) -> str:
        return name(spec, topic_prefix)

    allowed = [("device", "write", topics.SCANS), ("device", "write", topics.ENTRIES),
               ("isolation-staff", "write", topics.OBSERVATIONS), ("inspector", "write", topics.FINDINGS),
               ("inspector", "read", topics.FINDING_STATUS), ("register", "write", topics.MANAGEMENT),
               ("cdc", "write", topics.CASES), ("cdc", "read", topics.TRACES), ("cdc", "read", topics.EXPOSURES),
               ("operator", "write", topics.POLICIES), ("operator", "read", topics.SCANS),
               ("operator", "read", topics.DECISIONS), ("oncall", "read", topics.ALERTS),
               ("oncall", "read", topics.INCIDENTS), ("oncall", "write", topics.ALERT_ACTIONS),
               ("bridge", "read", topics.INCIDENTS), ("worker", "read", topics.SCANS)]
    refused = [("device", "write", topics.POLICIES), ("device", "read", topics.DECISIONS),
               ("device", "write", topics.FINDINGS), ("inspector", "write", topics.SCANS),
               ("inspector", "read", topics.SCANS), ("oncall", "write", topics.POLICIES),
               ("bridge", "write", topics.ALERTS), ("cdc", "read", topics.MANAGEMENT),
               ("register", "read", topics.MANAGEMENT), ("worker", "write", topics.SCANS)]
    # Nobody but the worker and the operator reads scans.
    refused += [(role, "read", topics.SCANS) for role in ROLES if role not in ("worker", "operator")]
    checks = list(dict.fromkeys(allowed + refused))  # in order, once each

    async def check_all() -> list[bool]:  # at once: a refusal may take a request timeout to show
        return list(await asyncio.gather(*((can_write if op == "write" else can_read)(secure, ca, role, topic(spec))
                                           for role, op, spec in checks)))

    done = asyncio.run(check_all())
    wrong = [(role, op, spec.name, "refused" if (role, op, spec) in allowed else "allowed")
             for (role, op, spec), ok in zip(checks, done, strict=True) if ok != ((role, op, spec) in allowed)]
    assert wrong == []


def read_incident(env: dict[str, str]) -> str:
    """The dedup key of an incident `hcs incidents` shows (as the role of ``env``)."""
    from streams.ops import oncall
    from streams.settings import Settings

    settings = Settings.from_env(env)
    for _ in range(30):  # the worker reads its alerts back: a moment after the scans
        found = asyncio.run(oncall.latest_incidents(settings.client_kwargs(),
                                                     topics.topic_name(topics.INCIDENTS, settings.topic_prefix)))
        if found:
            return next(iter(found))
        time.sleep(1)
    raise AssertionError("no incident in 30 s")


def test_broker_start_secure_runs_the_worker_and_the_commands_under_their_roles(
        worker_env: dict[str, str], topic_prefix: str, tmp_path: Path) -> None:
    """`hcs broker start --secure` as a user runs it: users per role, ACLs applied, one settings
    file per role; then the worker as `worker`, the simulator as `admin` (the development super
    user), the on-call team as `oncall`; a refused operation is one line naming what was denied."""
    from streams.dev.localkafka.secure import read_env_file

    state = tmp_path / "broker"
    env = {**worker_env}
    env.pop("HCS_BOOTSTRAP")
    started = hcs(env, "broker", "start", "--secure", "--port", str(free_port()), "--secure-port",
                  str(free_port()), "--state-dir", str(state))
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        folder = state / "secure" / "clients"
        assert f"client settings per role: {folder}" in started.stdout
        assert sorted(p.stem for p in folder.glob("*.env")) == sorted(("admin", *ROLES))
        assert oct((folder / "worker.password").stat().st_mode & 0o777) == "0o600"

        def as_role(role: str) -> dict[str, str]:
            return {**env, **read_env_file(folder / f"{role}.env")}

        worker = WorkerProcess(as_role("worker"), tmp_path / "worker.log").start()
        try:
            sent = hcs(as_role("admin"), "simulate", "--count", "400", "--rate", "400", "--seed", "4",
                       "--ack-after", "1")
            assert sent.returncode == 0, sent.stderr
            listed = hcs(as_role("oncall"), "incidents")
            assert listed.returncode == 0 and listed.stdout.startswith("age "), listed.stdout + listed.stderr
            denied = hcs(as_role("oncall"), "policy", "publish", "streams/rules/default_policy.json")
            # Every command as the role it needs, end to end.
            policy = f.policy_file(tmp_path, "acl-1", fever_threshold_c=37.2)
            now = f.ts(datetime.now(f.SHANGHAI))
            commands = [
                ("operator", "policy", "publish", str(policy)), ("operator", "policy", "list"),
                ("inspector", "finding", "open", "--venue", "v-1", "--venue-type", "mall", "--district", "330106",
                 "--problem", "MASK"),
                ("inspector", "findings"),
                ("cdc", "case", "report", "--person", f.pseudonym(77), "--sampled-at", now, "--id", "acl-case"),
                ("oncall", "tail", "--from-beginning", "--max", "1", "--timeout", "30"),
            ]
            for role, *args in commands:
                done = hcs(as_role(role), *args)
                assert done.returncode == 0, (role, args, done.stdout + done.stderr)
            incident = read_incident(as_role("oncall"))
            acked = hcs(as_role("oncall"), "ack", incident)
            assert acked.returncode == 0 or "not written" in acked.stderr, acked.stdout + acked.stderr
            traced = hcs(as_role("cdc"), "trace", "acl-case")
            assert traced.returncode == 0, traced.stdout + traced.stderr
            bridge = WorkerProcess({**as_role("bridge"), "HCS_ALERTMANAGER_URL": f"http://127.0.0.1:{free_port()}"},
                                   tmp_path / "bridge.log", command="alerts-bridge").start()
            bridge.stop()
            assert "AuthorizationFailed" not in bridge.log_path.read_text(), bridge.log_tail()
        finally:
            worker.stop()
        assert "AuthorizationFailed" not in worker.log_path.read_text(), worker.log_tail()
        assert denied.returncode == 1 and denied.stderr.count("\n") == 1, denied.stderr
        # policy publish reads the versions in force first: the Read is what oncall lacks.
        assert f"denied Read on topic {topic_prefix}hcs.policies.v1" in denied.stderr, denied.stderr
        secret = (folder / "oncall.password").read_text().strip()
        assert secret not in denied.stderr + denied.stdout + worker.log_path.read_text()
    finally:
        hcs(env, "broker", "stop", "--state-dir", str(state))
