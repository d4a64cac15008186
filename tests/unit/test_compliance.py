"""Three-100% window arithmetic, district-minute figures and stream time (pure)."""

from __future__ import annotations

import math
from collections import Counter

import msgspec
import orjson

from streams.contract.encoding import encode
from streams.rules.compliance import CheckpointWindow, DistrictMinute, StreamClock, window_start


def test_windows_are_tumbling_and_aligned_with_the_start_inclusive() -> None:
    assert window_start(600.0, 600) == 600.0
    assert window_start(1199.999, 600) == 600.0
    assert window_start(1200.0, 600) == 1200.0
    assert window_start(-0.5, 60) == -60.0


def window(scans: list[tuple[float | None, bool | None]], entries: int | None = None) -> CheckpointWindow:
    w = CheckpointWindow()
    for temp, mask in scans:
        w.add_scan(temp, mask)
    if entries is not None:
        w.add_entries(entries)
    return w


def test_a_perfect_window_has_no_miss() -> None:
    w = window([(36.5, True)] * 3, entries=3)
    assert (w.violated, w.outcomes()) == (False, {"code": (3, 0), "temperature": (3, 0), "mask": (3, 0)})


def test_code_misses_are_people_counted_beyond_the_scans() -> None:
    w = window([(36.5, True)] * 4, entries=7)
    assert (w.code_misses, w.violated, w.outcomes()["code"]) == (3, True, (4, 3))


def test_fewer_entries_than_scans_is_no_code_miss() -> None:
    w = window([(36.5, True)] * 5, entries=2)
    assert (w.code_misses, w.outcomes()["code"], w.violated) == (0, (2, 0), False)


def test_without_entry_counts_code_examination_cannot_miss() -> None:
    w = window([(36.5, True)] * 2)
    assert (w.code_misses, w.outcomes()["code"]) == (0, (2, 0))


def test_entries_reported_as_zero_still_count_as_reported() -> None:
    w = window([], entries=0)
    assert (w.entries_reported, w.violated) == (True, False)
    assert window([], entries=2).code_misses == 2


def test_a_missing_temperature_and_a_false_or_unobserved_mask_are_misses() -> None:
    w = window([(None, True), (36.6, False), (36.6, None), (36.6, True)])
    assert w.outcomes() == {"code": (4, 0), "temperature": (3, 1), "mask": (2, 2)}


def test_windows_round_trip_through_json() -> None:
    w = window([(None, False)], entries=4)
    assert msgspec.json.decode(msgspec.json.encode(w), type=CheckpointWindow) == w
    assert msgspec.json.encode(w) == b"[1,1,1,4,true]"  # the changelog's shape, as before


def test_district_minutes_merge_every_figure() -> None:
    a, b = DistrictMinute(), DistrictMinute()
    a.add_decisions(1, Counter(["DENY"]), Counter(["NO_MASK"]), late=0)
    b.add_decisions(1, Counter(["ALLOW"]), Counter(), late=1)
    b.alerts["KEY_PERSON_DETECTED"] += 1
    b.add_outcomes({"code": (1, 2), "temperature": (3, 0), "mask": (2, 1)})
    a.merge(DistrictMinute.from_json(b.to_json()))
    record = orjson.loads(encode(a.record("330106", 120.0, str)))  # as written
    assert record == {
        "schema": "hcs.district-stats.v1", "district": "330106", "window_start": "120.0", "window_end": "180.0",
        "scans": 2, "decisions": {"ALLOW": 1, "DENY": 1}, "reasons": {"NO_MASK": 1},
        "alerts": {"KEY_PERSON_DETECTED": 1},
        "three100": {"code": {"ok": 1, "miss": 2}, "temperature": {"ok": 3, "miss": 0}, "mask": {"ok": 2, "miss": 1}},
        "late": 1}


def test_stream_time_follows_event_time_while_records_flow() -> None:
    clock = StreamClock(idle_s=10)
    clock.observe(0, 1000.0, wall=5000.0)
    clock.observe(0, 990.0, wall=5001.0)  # an out-of-order record does not move it back
    assert clock.now(0, wall=5005.0) == 1000.0


def test_stream_time_follows_the_wall_clock_once_idle() -> None:
    clock = StreamClock(idle_s=10)
    clock.observe(0, 1000.0, wall=5000.0)
    assert clock.now(0, wall=5010.0) == 5010.0


def test_a_partition_never_read_waits_out_the_idle_time_first() -> None:
    clock = StreamClock(idle_s=10)
    assert clock.now(3, wall=5000.0) == -math.inf  # maybe a backlog is about to arrive
    assert clock.now(3, wall=5009.0) == -math.inf
    assert clock.now(3, wall=5010.0) == 5010.0


def test_a_partition_given_up_and_taken_back_starts_as_new() -> None:
    clock = StreamClock(idle_s=10)
    clock.observe(3, 1000.0, wall=5000.0)
    clock.forget([3])
    # Another worker read it meanwhile; what it left is read by its own event times, not the wall.
    assert clock.now(3, wall=5100.0) == -math.inf
    clock.observe(3, 1200.0, wall=5101.0)
    assert clock.now(3, wall=5102.0) == 1200.0
