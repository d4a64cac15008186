"""Visits on disk (streams.kafka.visits): a person's and a venue's visits by time, retention, and
recovery from the changelog that never restores an expired visit."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
from faust.types import TP

from streams.kafka.visits import VisitStore, changelog_record, tombstone
from streams.rules.tracing import Visit

T = 1_700_000_000


def visit_store(data_dir: Path) -> tuple[Any, VisitStore]:
    app = faust.App("visits-test", store="memory://", datadir=str(data_dir), autodiscover=False)
    app.finalize()
    table = app.Table("visits", partitions=4, key_type=str, store="hcs-visits:visits")
    store = table.data
    assert isinstance(store, VisitStore)
    return table, store


def test_a_persons_and_a_venues_visits_are_read_by_time_and_partition(tmp_path: Path) -> None:
    _, store = visit_store(tmp_path)
    a1 = Visit("mall-1", T, "e1", "pa", T + 5400)
    a2 = Visit("school-2", T + 7200, "e2", "pa", T + 7200 + 28800)
    b1 = Visit("mall-1", T + 600, "e3", "pb", T + 6000)
    b2 = Visit("mall-10", T + 600, "e4", "pb", T + 6000)  # a venue whose id starts with another's
    store.put(1, [a1, a2, b1, b2])
    store.put(2, [Visit("mall-1", T, "e9", "pa", T + 60)])  # another partition: never read for 1
    assert list(store.of_person(1, "pa", T, T + 7200)) == [a1, a2]
    assert list(store.of_person(1, "pa", T + 1, T + 7200)) == [a2]
    assert list(store.of_person(1, "pa", T, T + 7199)) == [a1]
    assert list(store.at_venue(1, "mall-1", T - 3600, T + 3600)) == [a1, b1]
    assert list(store.at_venue(1, "mall-1", T + 1, T + 3600)) == [b1]
    assert list(store.at_venue(3, "mall-1", 0, T * 2)) == []  # not on this worker's disk


def test_retention_finds_the_oldest_and_deleting_removes_every_key(tmp_path: Path) -> None:
    _, store = visit_store(tmp_path)
    old, new = Visit("mall-1", T, "e1", "pa", T + 60), Visit("mall-1", T + 100, "e2", "pb", T + 160)
    store.put(0, [old, new])
    assert store.started_before(0, T + 100, limit=10) == [old._replace(end=0)]  # the keys, for deletion
    store.delete(0, store.started_before(0, T + 100, limit=10))
    assert store.started_before(0, T + 1000, limit=10) == [new._replace(end=0)]
    assert list(store.of_person(0, "pa", 0, T * 2)) == [] and list(store.at_venue(0, "mall-1", 0, T * 2)) == [new]
    store.kept_since = lambda: T + 50.0
    assert list(store.at_venue(0, "mall-1", 0, T * 2)) == [new]  # reads never reach before retention


def event(tp: TP, offset: int, key: bytes, value: bytes | None) -> Any:
    return SimpleNamespace(message=SimpleNamespace(tp=tp, partition=tp.partition, offset=offset, key=key, value=value))


def test_recovery_rebuilds_every_key_from_the_changelog_but_never_an_expired_visit(tmp_path: Path) -> None:
    table, store = visit_store(tmp_path)
    tp = TP(table.changelog_topic.get_topic_name(), 1)
    expired, kept, removed = (Visit("mall-1", T - 20 * 86400, "e0", "pa", T - 20 * 86400 + 60),
                              Visit("mall-1", T, "e1", "pb", T + 60), Visit("mall-1", T + 5, "e2", "pc", T + 65))
    store.kept_since = lambda: T - 14 * 86400.0
    store.apply_changelog_batch([event(tp, 10, *changelog_record(expired)), event(tp, 11, *changelog_record(kept)),
                                 event(tp, 12, *changelog_record(removed)), event(tp, 13, *tombstone(removed))],
                                lambda k: k, lambda v: v)
    assert list(store.at_venue(1, "mall-1", 0, T * 2)) == [kept]
    assert list(store.of_person(1, "pa", 0, T * 2)) == [] and list(store.of_person(1, "pc", 0, T * 2)) == []
    store.kept_since = lambda: 0.0  # even where retention would allow it, the expired one never came in
    assert store.started_before(1, T * 2, limit=10) == [kept._replace(end=0)]
    assert store.persisted_offset(tp) == 13
