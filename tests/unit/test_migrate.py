"""Growing past the partitions: where each record of the old generation's venue tables goes in a
generation with more venue partitions (streams.ops.migrate), checked without Kafka."""

from __future__ import annotations

import orjson
import pytest

from streams.errors import ConfigError
from streams.kafka.output import partition_for
from streams.kafka.state import PARTITION_SPAN
from streams.ops import migrate, placement
from streams.ops.migrate import Generation
from streams.ops.placement import EVERY, SAME, STATE_MOVES, Placer
from tests import factories as f


def venue_on(partition: int, partitions: int) -> str:
    """The factories' venue on ``partition`` of ``partitions``."""
    venues = f.venues_on_partitions("v", partitions, partitions)  # one on each partition
    return next(v for v in venues if partition_for(v.encode(), partitions) == partition)


def test_every_keyspace_of_the_worker_says_how_it_moves() -> None:
    from streams.settings import Settings
    from streams.worker.app import create_app

    app = create_app(Settings.from_env({"HCS_APP_ID": "m"}))
    prefixes = {space.prefix for space in app.wiring.state._spaces}
    assert prefixes and prefixes <= set(STATE_MOVES), prefixes - set(STATE_MOVES)


def test_a_venues_state_goes_where_its_records_will_go_in_the_new_count() -> None:
    placer = Placer(STATE_MOVES, 2, 8)
    venue = venue_on(7, 8)
    old = partition_for(venue.encode(), 2)
    assert placer.place(f"f|{venue}|person-1", [old, {}], old) == [7]  # a recheck: venue first
    assert placer.place(f"s|{venue}|auto|{venue}|2026-12-06", [old, {}], old) == [7]  # a finding
    assert placer.place(f"x|nat|e-1|person-2|{venue}", [old, 1.0], old) == [7]  # an exposure: venue last
    status = {"venue_id": venue, "seen": 1.0}
    assert placer.place("c|checkpoint-9", [old, status], old) == [7]  # a checkpoint: its value's venue
    assert placer.place("c|checkpoint-9", None, old) == [7]  # ... and its tombstone follows it


def test_what_names_no_venue_goes_to_every_heir_and_partition_numbers_stay() -> None:
    placer = Placer(STATE_MOVES, 2, 8)
    assert placer.place("a|KEY_PERSON_DETECTED|abc|v", [1, []], 1) == [1, 3, 5, 7]  # an alert memo
    assert placement.descendants(0, 2, 8) == [0, 2, 4, 6]
    assert placer.place("m|1|330106|1700000000", [1, {}], 1) == [1]  # a partition's minute part
    assert placer.place("tr|case-1|1", [1, []], 1) == [1]
    assert placer.place("tc|case-1", [0, []], 0) == [partition_for(b"case-1", 8)]  # trace reports' owner
    assert placer.counts[EVERY] == 1 and placer.counts[SAME] == 2
    seen = Placer(placement.SEEN_MOVES, 2, 8)
    assert seen.place("d|hcs.scans.v1|1|40|0", 1, 1) == []  # positions of the old topics
    with pytest.raises(ValueError, match="no known keyspace"):
        placer.place("zz|something", [0, 1], 0)


def test_records_are_rewritten_with_their_new_partition() -> None:
    mark = 1_800_000_000 * PARTITION_SPAN + 1
    out = placement.seen_record(b'"e|scan-1"', str(mark).encode(), 1, Placer(placement.SEEN_MOVES, 2, 4))
    assert [(q, int(v or b"")) for q, _, v in out] == [(1, mark), (3, mark + 2)]  # the same expiry, each its partition
    venue = venue_on(2, 4)
    out = placement.state_record(b'"vm|' + venue.encode() + b'"', orjson.dumps([0, ["shop", "330106"]]), 0,
                               Placer(STATE_MOVES, 2, 4))
    assert [(q, orjson.loads(v or b"")) for q, _, v in out] == [(2, [2, ["shop", "330106"]])]
    assert placement.visit_record(f"v{venue}\x000001700000\x00e-1".encode(), b"p\x000001700060", 0, 4)[0][0] == 2


def test_a_move_that_cannot_carry_the_state_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a multiple"):
        migrate.check_move(Generation("a.", "a", 8), Generation("b.", "b", 12))
    with pytest.raises(ConfigError, match="its own HCS_TOPIC_PREFIX and HCS_APP_ID"):
        migrate.check_move(Generation("a.", "a", 8), Generation("a.", "b", 16))
    migrate.check_move(Generation("", "hcs-worker", 8), Generation("g2.", "hcs-g2", 16))
