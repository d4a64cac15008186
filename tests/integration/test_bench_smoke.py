"""The benchmark end to end on a tiny input, so that it cannot rot (its figures are not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.run import CONTENDERS, LOW_RATE, MODES, run_benchmark, table

pytestmark = pytest.mark.integration


def test_the_benchmark_runs_every_contender_in_both_modes_and_writes_its_report(
        kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # the contenders inherit it
    out = tmp_path / "bench.json"
    lines: list[str] = []
    report = run_benchmark(kafka_bootstrap, scans=3000, rounds=1, budget_s=3, rate=300, latency_s=2, out=out,
                           log=lines.append)
    assert {(r.contender, r.mode) for r in report.runs} == {(c, m) for c in CONTENDERS for m in MODES}
    assert all(r.scans > 0 and r.cpu_s > 0 and r.peak_rss_mb > 0 for r in report.runs)
    assert {(lat.contender, lat.mode) for lat in report.latencies} == {(c, m) for c in ("raw", "hcs") for m in MODES}
    assert all(lat.scans > 0 for lat in report.latencies), lines
    low = {lat.contender: lat for lat in report.latencies if lat.offered_scans_per_s == LOW_RATE}
    assert set(low) == {"raw", "hcs"} and low["hcs"].cpu_percent > 0, lines  # CPU at a quiet district's rate
    saved = json.loads(out.read_text())
    assert set(saved["summary"]) == set(MODES) and saved["scans"] == 3000
    printed = table(report)
    assert "hcs/raw" in printed and "single" in printed and "batch" in printed and "idle %" in printed
    assert list(cwd.iterdir()) == []  # no contender left its data dir where it was started
