"""The what-if comparison without a broker: both policies at each scan's event time, rechecks
replayed per side, duplicates judged once, the range and district kept."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from streams.ops.replay import Replay
from streams.rules.policy import load_policy
from tests import factories as f

T0 = f.T0


def test_each_side_replays_its_own_rechecks_and_a_duplicate_is_judged_once(tmp_path: Path) -> None:
    candidate = load_policy(f.policy_file(tmp_path, "candidate", fever_threshold_c=37.0))
    replay = Replay(load_policy(), candidate, T0.timestamp(), (T0 + timedelta(hours=1)).timestamp())
    ref = f.pseudonym(3)
    first = f.scan(at=T0, person_ref=ref, temperature_c=37.1)  # a fever under the candidate only
    again = f.scan(at=T0 + timedelta(minutes=5), person_ref=ref, temperature_c=37.1)
    for value in (first, first, again):
        replay.add_record(b"venue-1", f.encode(value))
    figures = replay.figures[("330106", "mall")]
    assert (figures.scans, dict(figures.current), dict(figures.candidate), figures.changed) == (
        2, {"ALLOW": 2}, {"RECHECK": 1, "DENY": 1}, 2)  # the second: the candidate's recheck, confirmed
    assert replay.skipped == {"duplicate": 1}
    assert [c["candidate"]["decision"] for c in replay.changes] == ["RECHECK", "DENY"]
    assert replay.changes[1]["candidate"]["reasons"] == ["FEVER"]  # the recheck still at or above: denied
    assert all("person_ref" not in c for c in replay.changes)


def test_scans_outside_the_range_or_of_another_district_are_left_out() -> None:
    replay = Replay(load_policy(), load_policy(), T0.timestamp(), (T0 + timedelta(hours=1)).timestamp(), "330106")
    for value in (f.scan(at=T0 - timedelta(seconds=1)), f.scan(at=T0 + timedelta(hours=1)),
                  f.scan(district="330105"), f.scan()):
        replay.add_record(b"venue-1", f.encode(value))
    replay.add_record(b"venue-1", b"{")
    assert replay.scans == 1 and replay.skipped == {"outside_range": 2, "other_district": 1, "refused": 1}
    assert replay.table()[-1] == "1 scans, 0 with another decision under the candidate, 1 other district, " \
                                 "2 outside range, 1 refused"
