"""The state-takeover benchmark's table and the benchmarks' busy neighbours, without a broker
(the takeover runs are in docs/performance.md; no test asserts a figure)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from benchmarks.neighbours import neighbours
from benchmarks.takeover import MOVES, Move, table


def test_the_table_has_a_row_per_state_size_and_standby_setting_and_a_column_per_move() -> None:
    moves = [Move(100_000, s, move, ready, 8 if move in ("first", "leave") else 4)
             for s, times in ((0, (13.7, 9.4, 5.7, 4.8)), (1, (12.6, 10.7, 1.1, 2.7)))
             for move, ready in zip(MOVES, times, strict=True)]
    lines = table(moves).splitlines()
    assert lines[0] == "| keys | standby | first | join | leave | rejoin |"
    assert lines[2] == "| 100,000 | 0 | 13.7 s | 9.4 s | 5.7 s | 4.8 s |"
    assert lines[3] == "| 100,000 | 1 | 12.6 s | 10.7 s | 1.1 s | 2.7 s |"
    assert len(lines) == 4
    # A run cut short shows what it measured, and a dash for the rest.
    assert table(moves[:2]).splitlines()[2] == "| 100,000 | 0 | 13.7 s | 9.4 s | - | - |"


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_neighbours_spin_a_core_each_while_the_block_runs_and_are_gone_after_it() -> None:
    with neighbours(2) as pids:
        assert len(pids) == 2
        time.sleep(0.6)
        assert all(_cpu_s(pid) > 0.1 for pid in pids)  # busy, not asleep
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)  # killed and reaped
    with neighbours(0) as none:
        assert none == []
