"""Dedup marks: one int per id (expiry and partition), changelogged, swept oldest first."""

from __future__ import annotations

import gc
from types import SimpleNamespace
from typing import Any

from streams.kafka.state import DedupMarks


def marks() -> tuple[DedupMarks, list[tuple[int, str, Any]]]:
    sent: list[tuple[int, str, Any]] = []
    table = SimpleNamespace(data=SimpleNamespace(data={}))  # a table over a memory store
    return DedupMarks(table, lambda partition, records: sent.extend((partition, k, v) for k, v in records)), sent


def test_a_mark_goes_to_its_partitions_changelog_once_per_flush_and_holds_no_container() -> None:
    m, sent = marks()
    m.claim(["d:a"], 1000.2, 3)
    m.claim(["d:b"], 1000.0, 7)
    assert "d:a" in m and "d:c" not in m
    assert m.flush() == 2 and m.flush() == 0
    assert [(p, k) for p, k, _ in sent] == [(3, "d:a"), (7, "d:b")]
    assert all(isinstance(v, int) for _, _, v in sent)
    assert not gc.is_tracked(m.data)  # the collector never walks the marks


def test_a_sweep_forgets_expired_marks_of_owned_partitions_with_tombstones_and_stops_at_the_first_unexpired() -> None:
    m, sent = marks()
    for i in range(5):
        m.claim([f"d:{i}"], 100.0 + i, i % 2)
    m.claim(["d:late-but-old"], 50.0, 0)  # made after d:4, expires before it: left for a later sweep
    m.flush()
    sent.clear()
    removed = m.sweep(now=102.5, owned=lambda partition: partition == 0)
    assert removed == 2  # d:0 and d:2 (partition 0); d:1 is not this worker's
    assert "d:1" in m and "d:3" in m and "d:late-but-old" in m
    m.flush()
    assert sorted(sent) == [(0, "d:0", None), (0, "d:2", None)]
    assert m.sweep(now=1000.0, owned=lambda partition: True) == 4


def test_claiming_marks_only_ids_not_seen_and_a_repeat_within_the_claim_once() -> None:
    m, sent = marks()
    m.claim(["d:old"], 1000.0, 3)
    assert m.claim(["d:a", "d:old", "d:b", "d:a"], 2000.5, 3) == [0, 2]
    assert "d:a" in m and "d:b" in m
    m.flush()
    assert sorted(k for _, k, _ in sent) == ["d:a", "d:b", "d:old"]
    assert {v for _, k, v in sent if k != "d:old"} == {2001 * 4096 + 3}  # expiry rounded up, partition packed
