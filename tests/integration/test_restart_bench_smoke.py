"""The restart benchmark on a tiny state, so that it cannot rot (its figures are not asserted)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from benchmarks import restart

pytestmark = pytest.mark.integration


def test_the_restart_benchmark_times_two_starts_of_a_worker_on_a_filled_changelog(
        kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCS_BOOTSTRAP", kafka_bootstrap)
    result = CliRunner().invoke(restart.main, ["--keys", "2000"])
    assert result.exit_code == 0, result.output
    memory, rocksdb = result.output.strip().splitlines()
    assert memory.startswith("2,000 keys, memory store: first start ready in "), memory
    assert "recovery None" not in memory, memory
    assert rocksdb.startswith("2,000 keys, rocksdb store: first start ready in "), rocksdb
