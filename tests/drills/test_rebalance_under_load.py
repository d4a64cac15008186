"""Fault drill, the short form of ``python -m benchmarks.rebalance``: workers join, are killed
with ``kill -9`` and leave cleanly under a steady offered load, and every scan is still decided
exactly once and no alert is written twice (read as readers read them: committed only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.rebalance import run_drill, summary

pytestmark = [pytest.mark.integration, pytest.mark.drill]


def test_workers_joining_killed_and_leaving_under_load_decide_every_scan_once(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    report = run_drill(kafka_bootstrap, rate=300, seconds=30, every=(5, 6), max_workers=3, workdir=tmp_path)
    print(summary(report))
    assert [c.action for c in report.changes] == ["join", "kill", "join", "leave"]
    assert [c.workers for c in report.changes] == [3, 2, 3, 2]
    assert report.sent == 9_000
    assert report.lost == 0 and report.repeated == 0  # every scan decided, none twice
    assert report.alerts > 0 and report.alerts_repeated == 0  # no alert written twice
