"""The tracing benchmark's end-to-end mode on a tiny store: a real worker traces the case."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from benchmarks import tracing

pytestmark = pytest.mark.integration


def test_the_end_to_end_tracing_benchmark_times_a_case_to_its_complete_trace(
        kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCS_BOOTSTRAP", kafka_bootstrap)
    result = CliRunner().invoke(tracing.main, ["--visits", "3000", "--venues", "40", "--people", "300", "--e2e"])
    assert result.exit_code == 0, result.output
    found = re.search(r"case record -> Trace complete in [0-9.]+ s .*\((\d+) visits at (\d+) venues, (\d+) contacts",
                      result.output)
    assert found and int(found.group(1)) == 20 and int(found.group(3)) >= 60, result.output
