"""The tracing benchmark on a tiny store, so that it cannot rot (its figures are not asserted)."""

from __future__ import annotations

import re

from click.testing import CliRunner

from benchmarks import tracing


def test_the_tracing_benchmark_stores_visits_and_traces_the_case_to_its_companions() -> None:
    result = CliRunner().invoke(tracing.main, ["--visits", "5000", "--venues", "50", "--people", "500"])
    assert result.exit_code == 0, result.output
    assert "stored 5,000 visits in " in result.output and " bytes per visit " in result.output
    found = re.search(r"trace of a case with 20 visits among 5,000: (\d+) contacts", result.output)
    assert found and int(found.group(1)) >= 60, result.output  # three people beside each of its 20 visits
