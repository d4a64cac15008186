"""`hcs bench` end to end on a tiny input, run as the README writes it (the installed `hcs`
command, from outside the checkout), so that it cannot rot (its figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.run import CONTENDERS, LOW_RATE, MODES

pytestmark = pytest.mark.integration


def test_hcs_bench_runs_every_contender_in_both_modes_and_writes_its_report(
        worker_env: dict[str, str], tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()  # the contenders inherit it
    out = tmp_path / "bench.json"
    hcs = Path(sys.executable).parent / "hcs"  # .venv/bin/hcs: the editable install maps only streams/
    result = subprocess.run([str(hcs), "bench", "--scans", "3000", "--rounds", "1", "--budget", "3", "--rate", "300",
                             "--latency-seconds", "2", "--out", str(out)], env=worker_env, cwd=cwd,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads(out.read_text())
    assert {(r["contender"], r["mode"]) for r in saved["runs"]} == {(c, m) for c in CONTENDERS for m in MODES}
    assert all(r["scans"] > 0 and r["cpu_s"] > 0 and r["peak_rss_mb"] > 0 for r in saved["runs"])
    latencies = saved["latencies"]
    assert {(lat["contender"], lat["mode"]) for lat in latencies} == {(c, m) for c in ("raw", "hcs") for m in MODES}
    assert all(lat["scans"] > 0 for lat in latencies), result.stderr[-3000:]
    low = {lat["contender"]: lat for lat in latencies if lat["offered_scans_per_s"] == LOW_RATE}
    assert set(low) == {"raw", "hcs"} and low["hcs"]["cpu_percent"] > 0  # CPU at a quiet district's rate
    assert set(saved["summary"]) == set(MODES) and saved["scans"] == 3000
    printed = result.stdout
    assert "hcs/raw" in printed and "single" in printed and "batch" in printed and "idle %" in printed
    assert list(cwd.iterdir()) == []  # no contender left its data dir where it was started
