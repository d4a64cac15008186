"""Keyspaces: one concept's keys of the state table, indexed so its timers walk only them."""

from __future__ import annotations

from typing import Any

import msgspec

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
    """Every keyspace the concepts make on the worker's state table has a prefix no other one starts
    with (findings once took ``f|``, the fever rechecks' prefix)."""
    from streams.kafka.state import DedupMarks
    from streams.metrics import Metrics
    from streams.rules.policy import load_policy
    from streams.worker.wiring import Wiring

    table, _ = state()
    made: list[str] = []
    keyspace = table.keyspace

    def recording(prefix: str, by_update: bool = False) -> Any:
        made.append(prefix)
        return keyspace(prefix, by_update)

    typed = table.typed

    def recording_typed(prefix: str, kind: Any, by_update: bool = False) -> Any:
        made.append(prefix)
        return typed(prefix, kind, by_update)

    table.keyspace = recording  # type: ignore[method-assign]
    table.typed = recording_typed  # type: ignore[method-assign]
    Wiring(load_policy(), table, DedupMarks(Table(), lambda partition, records: None),
           PartitionedState(Table(), lambda partition, records: None), None, None,  # type: ignore[arg-type]
           Metrics(), dedup_horizon_s=3600)
    assert len(made) >= 9, made
    clashes = [(a, b) for a in made for b in made if a is not b and b.startswith(a)]
    assert clashes == [], clashes


def test_a_due_index_gives_a_partitions_keys_in_due_order_up_to_its_clock_and_takes_them_out() -> None:
    table, _ = state()
    windows = table.keyspace("w|")
    closing = windows.due_index(lambda raw: raw["close"], monotone=True)
    for i, (close, partition) in enumerate([(30.0, 0), (10.0, 0), (20.0, 1), (40.0, 0)]):
        windows.set(f"w|{i}", {"close": close}, partition)
    assert closing.pop_due(0, 9.9) == []  # nothing due: one look at the heap's top
    assert closing.pop_due(0, 30.0) == ["w|1", "w|0"]  # due at or before the clock, earliest first
    assert closing.pop_due(0, 30.0) == []  # taken out
    assert closing.pop_due(1, 100.0) == ["w|2"]  # each partition by its own clock
    windows.delete("w|3")
    assert closing.pop_due(0, 100.0) == []  # a deleted key never surfaces


def test_a_popped_key_not_due_yet_is_deferred_and_a_monotone_index_ignores_later_times() -> None:
    table, _ = state()
    statuses = table.keyspace("c|")
    by_seen = statuses.due_index(lambda raw: raw["seen"] + 10, monotone=True)
    assert by_seen.pop_due(0, 0.0) == []  # built: from now on kept up to date by each set
    statuses.set("c|cp", {"seen": 0.0}, 0)
    statuses.set("c|cp", {"seen": 5.0}, 0)  # later: the indexed lower bound (10) still holds
    assert by_seen.pop_due(0, 10.0) == ["c|cp"]
    by_seen.defer("c|cp", 0, 15.0)  # its real time, found when it surfaced
    assert by_seen.pop_due(0, 14.9) == [] and by_seen.pop_due(0, 15.0) == ["c|cp"]


def test_a_non_monotone_index_moves_a_key_earlier_and_skips_what_it_left_behind() -> None:
    table, _ = state()
    findings = table.keyspace("s|")
    timeline = findings.due_index(lambda raw: raw["due"])
    assert timeline.pop_due(0, 0.0) == []
    findings.set("s|f", {"due": 100.0}, 0)
    findings.set("s|f", {"due": 50.0}, 0)  # reopened with an earlier deadline
    assert timeline.pop_due(0, 60.0) == ["s|f"]
    assert timeline.pop_due(0, 200.0) == []  # the entry at 100 was left behind: skipped
    findings.set("s|f", {"due": None}, 0)  # waits for someone: not indexed
    assert len(timeline) == 0


def test_a_due_index_is_rebuilt_from_the_table_after_a_recovery() -> None:
    table, _ = state()
    windows = table.keyspace("w|")
    closing = windows.due_index(lambda raw: raw["close"], monotone=True)
    assert closing.pop_due(0, 0.0) == []  # built (empty)
    table.data["w|recovered"] = [2, {"close": 5.0}]  # Faust's recovery writes the store directly
    table.reindex()
    assert closing.pop_due(2, 5.0) == ["w|recovered"]


class Window(msgspec.Struct):
    close: float
    counts: list[int]


def test_a_typed_keyspace_keeps_structs_writes_the_same_json_and_reads_recovered_values_as_structs() -> None:
    table, sent = state()
    windows = table.typed("w|", Window)
    windows.set("w|a", Window(5.0, [1, 2]), 3)
    table.flush()
    assert sent == [(3, [("w|a", [3, Window(5.0, [1, 2])])])]  # encoded once, when the changelog is written
    assert msgspec.json.encode(sent[0][1][0][1]) == b'[3,{"close":5.0,"counts":[1,2]}]'  # the JSON as before
    table.data["w|b"] = [1, {"close": 7.0, "counts": [0, 0]}]  # as Faust's recovery puts it
    table.reindex()
    got = windows.get("w|b")
    assert got == Window(7.0, [0, 0]) and table.data["w|b"][1] is got  # converted once, in place
    assert [(k, p, v) for k, p, v in windows.items()] == [("w|a", 3, Window(5.0, [1, 2])), ("w|b", 1, got)]


def test_every_keyspace_is_indexed_in_one_walk_by_its_prefix() -> None:
    table, _ = state()
    spaces = {prefix: table.keyspace(prefix) for prefix in ("a|", "ab|", "x|p|", "x|wm|")}
    for key in ("a|1", "ab|2", "x|p|3", "x|wm|4", "x|5", "zz"):
        table.data[key] = [0, key]
    table.reindex()
    assert {prefix: [k for k, _, _ in space.items()] for prefix, space in spaces.items()} == {
        "a|": ["a|1"], "ab|": ["ab|2"], "x|p|": ["x|p|3"], "x|wm|": ["x|wm|4"]}
