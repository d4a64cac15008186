"""The pipeline benchmark runs (on a tiny input, so it cannot rot); it asserts no figure."""

from __future__ import annotations

from benchmarks import pipeline


def test_the_pipeline_benchmark_judges_every_scan_and_prints_its_figures() -> None:
    result = pipeline.run(scans=2_000, batch=100)
    assert result.scans == 2_000
    # One decision per scan generated (the mix's duplicate and malformed records come besides them).
    assert result.decisions == 2_000
    assert result.outputs > result.decisions  # and alerts, dead letters, changelog records
    assert "us CPU per scan" in result.line()
