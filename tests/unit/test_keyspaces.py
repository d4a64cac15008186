"""Keyspaces: one concept's keys of the state table, indexed so its timers walk only them."""

from __future__ import annotations

from typing import Any

from streams.kafka.state import PartitionedState
from tests.unit.handlers.harness import Table


def state() -> tuple[PartitionedState, list[tuple[int, list[tuple[str, Any]]]]]:
    sent: list[tuple[int, list[tuple[str, Any]]]] = []
    return PartitionedState(Table(), lambda partition, records: sent.append((partition, records))), sent


def test_a_keyspace_walks_its_own_keys_only_and_writes_through_to_the_table() -> None:
    table, sent = state()
    windows, memos = table.keyspace("w|"), table.keyspace("a|")
    for i in range(1000):
        memos.set(f"a|{i}", i, i % 8)
    windows.set("w|cp-1|0", {"close": 1}, 3)
    assert [(k, p, v) for k, p, v in windows.items()] == [("w|cp-1|0", 3, {"close": 1})]
    assert len(memos) == 1000 and table.get("w|cp-1|0") == {"close": 1}
    windows.delete("w|cp-1|0")
    assert list(windows.items()) == [] and table.get("w|cp-1|0") is None
    table.flush()
    assert ("w|cp-1|0", None) in dict(sent)[3]  # the tombstone went to the key's partition


def test_keys_recovery_put_in_the_table_are_found_after_a_reindex() -> None:
    table, _ = state()
    windows = table.keyspace("w|")
    windows.set("w|a|0", 1, 0)
    assert len(windows) == 1
    table.data["w|b|0"] = [1, 2]  # Faust's recovery writes the store directly
    table.data["a|x"] = [1, 3]
    assert len(windows) == 1  # the index does not know yet
    table.reindex()
    assert sorted(k for k, _, _ in windows.items()) == ["w|a|0", "w|b|0"]


def test_a_key_gone_from_the_table_drops_out_of_the_index() -> None:
    table, _ = state()
    windows = table.keyspace("w|")
    windows.set("w|a|0", 1, 0)
    del table.data["w|a|0"]  # a revoked partition's keys, removed by Faust
    assert list(windows.items()) == [] and len(windows) == 0


def test_by_update_lists_keys_least_recently_set_first_and_a_walk_can_stop_early() -> None:
    table, _ = state()
    memos = table.keyspace("a|", by_update=True)
    for key in ("a|1", "a|2", "a|3"):
        memos.set(key, key, 0)
    memos.set("a|1", "again", 0)
    assert [k for k, _, _ in memos.oldest()] == ["a|2", "a|3", "a|1"]
    walked = []
    for key, _, _ in memos.oldest():
        walked.append(key)
        if key == "a|3":
            break
    assert walked == ["a|2", "a|3"]


def test_no_concept_of_the_worker_reads_another_ones_keys() -> None:
    """Every keyspace the pipeline makes on its state table has a prefix no other one starts
    with (findings once took ``f|``, the fever rechecks' prefix)."""
    from streams.kafka.state import DedupMarks
    from streams.metrics import Metrics
    from streams.rules.policy import load_policy
    from streams.worker.pipeline import Pipeline

    table, _ = state()
    made: list[str] = []
    keyspace = table.keyspace

    def recording(prefix: str, by_update: bool = False) -> Any:
        made.append(prefix)
        return keyspace(prefix, by_update)

    table.keyspace = recording  # type: ignore[method-assign]
    Pipeline(load_policy(), table, DedupMarks(Table(), lambda partition, records: None), None,  # type: ignore[arg-type]
             None, Metrics(), dedup_horizon_s=3600)  # type: ignore[arg-type]
    assert len(made) >= 9, made
    clashes = [(a, b) for a in made for b in made if a is not b and b.startswith(a)]
    assert clashes == [], clashes
