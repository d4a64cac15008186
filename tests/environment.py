"""What the test run may assume about the machine: in CI every component is installed, so a missing
one fails the run; elsewhere the tests that need it skip, saying what to install."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

from streams.dev.localkafka import LocalKafka, SecureListener, free_port
from streams.errors import BrokerError

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

MONITORING_PACKAGES = "apt-get install prometheus prometheus-alertmanager"


def unavailable(what: str, why: str) -> NoReturn:
    """Fail in CI, skip elsewhere: ``what`` cannot be had, ``why`` says why and how to get it."""
    if IN_CI:
        pytest.fail(f"CI needs {what}: {why} (.ci/run must provide it)")
    pytest.skip(f"{what} is not available: {why}")


def tool(*names: str) -> str:
    """The path of the first of ``names`` on PATH (Debian names some binaries differently)."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    unavailable(names[0], f"not installed ({MONITORING_PACKAGES})")


@contextmanager
def local_broker(state_dir: Path, secure: SecureListener | None = None) -> Iterator[tuple[LocalKafka, str]]:
    """A real broker of the caller's alone, on a free port: (the broker, its PLAINTEXT bootstrap).
    A broker that cannot start fails the run in CI and skips the test elsewhere."""
    kafka = LocalKafka(state_dir, owned=True, secure=secure)
    try:
        status = kafka.start(port=free_port(avoid=(secure.port,) if secure else ()))
    except BrokerError as exc:
        unavailable("a real Kafka broker", str(exc))
    try:
        assert status.bootstrap
        yield kafka, status.bootstrap
    finally:
        kafka.stop()
