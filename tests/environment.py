"""What the test run may assume about the machine: in CI every component is installed, so a missing
one fails the run; elsewhere the tests that need it skip, saying what to install."""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

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
