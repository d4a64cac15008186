"""Isolation points' days on every boundary: the day's last minute and the grace, a resident
whose centralized phase starts or ends that day, a NAT day without a sample, two samples on one
day, an observation after its day closed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from streams.concepts.isolation import IsolationPoints
from streams.concepts.register import Register
from streams.contract import topics
from streams.contract.models import Observation
from streams.rules import codes as c
from streams.times import SHANGHAI
from tests import factories as f
from tests.unit.handlers.harness import Handlers

A, B, C = f.pseudonym(1), f.pseudonym(2), f.pseudonym(3)
MAY = {d: datetime(2022, 5, d, tzinfo=SHANGHAI) for d in range(1, 32)}


class Points:
    def __init__(self) -> None:
        self.h = Handlers()
        self.register = Register("hcs.management.v1")
        for ref, start, phases in (
                (A, "2022-05-10", f.FOURTEEN_SEVEN_SEVEN),  # day 1 on 05-10: NAT days 05-10, 05-13, ...
                (B, "2022-05-12", (("centralized_isolation", 7),)),  # starts on 05-12
                (C, "2022-05-06", (("centralized_isolation", 6), ("home_isolation", 7)))):  # last day 05-11 (day 6)
            self.register.apply(ref.encode(), f.encode(f.plan(ref, start=start, phases=phases)))
        self.points = IsolationPoints(self.h.state, self.register, self.h.intake, self.h.alerts, self.h.minutes,
                                      self.h.metrics, self.h.out, self.h.clock, self.h.uploads, self.h.policy,
                                      lambda: {0})
        self.n = 0

    def observe(self, ref: str, at: datetime, kind: str = "temperature", **fields: Any) -> None:
        self.n += 1
        temperature = fields.get("temperature_c", 36.6 if kind == "temperature" else None)
        obs = Observation(f"obs-{self.n}", "iso-1", "330105", ref, kind, at.timestamp(), temperature,
                          fields.get("nat_result"))
        self.h.stream_time(at.timestamp(), at.timestamp())
        self.points.observe(obs, 0, at.timestamp())

    def at(self, when: datetime) -> int:
        """Stream time reaches ``when``; close what is due."""
        self.h.stream_time(when.timestamp(), when.timestamp())
        return self.points.close(when.timestamp())

    def days(self) -> list[dict[str, Any]]:
        return self.h.out.sent[topics.ISOLATION_STATUS.name]

    def missed(self) -> list[tuple[str, str, str, dict[str, Any]]]:
        return [(a["kind"], a["person_ref"], a["dedup_key"].split("|")[-1], a["details"])
                for a in self.h.out.alerts() if a["kind"] in (c.OBSERVATION_MISSED, c.NAT_MISSED)]


def test_a_day_closes_once_at_its_end_plus_the_grace_and_its_last_minute_counts() -> None:
    p = Points()
    p.observe(A, MAY[11] + timedelta(hours=8))
    p.observe(C, MAY[11] + timedelta(hours=8))
    p.observe(C, MAY[11] + timedelta(hours=20))
    p.observe(A, MAY[11] + timedelta(hours=23, minutes=59))  # the day's last minute: still 05-11
    assert p.at(MAY[12] + timedelta(hours=1, minutes=59)) == 0  # within the 120-minute grace
    assert p.days() == []
    assert p.at(MAY[12] + timedelta(hours=2)) == 1  # the grace has passed
    (day,) = p.days()
    assert day == {"schema": "hcs.isolation-day.v1", "isolation_point_id": "iso-1", "district": "330105",
                   "date": "2022-05-11", "residents": 2, "temperature": {"due": 4, "done": 4},
                   "nat": {"due": 0, "done": 0}, "late": 0}
    assert p.missed() == []
    assert p.at(MAY[12] + timedelta(hours=3)) == 0  # closed once


def test_a_resident_starting_or_ending_centralized_isolation_that_day_is_a_resident_of_it() -> None:
    p = Points()
    p.observe(A, MAY[11] + timedelta(hours=9))
    p.at(MAY[13] + timedelta(hours=3))  # closes 05-11 and 05-12
    may11, may12 = p.days()
    assert (may11["date"], may11["residents"]) == ("2022-05-11", 2)  # A, and C on its last centralized day
    assert (may12["date"], may12["residents"]) == ("2022-05-12", 2)  # A, and B on its first (C is home now)
    assert may12["temperature"] == {"due": 4, "done": 0} and may12["nat"] == {"due": 1, "done": 0}
    # 05-12 is day 1 of B's centralized phase, a NAT day; A's day 3 is not.
    assert sorted(p.missed()) == sorted([
        (c.OBSERVATION_MISSED, A, "2022-05-11", {"date": "2022-05-11", "done": 1, "due": 2}),
        (c.OBSERVATION_MISSED, C, "2022-05-11", {"date": "2022-05-11", "done": 0, "due": 2}),
        (c.OBSERVATION_MISSED, A, "2022-05-12", {"date": "2022-05-12", "done": 0, "due": 2}),
        (c.OBSERVATION_MISSED, B, "2022-05-12", {"date": "2022-05-12", "done": 0, "due": 2}),
        (c.NAT_MISSED, B, "2022-05-12", {"date": "2022-05-12", "phase_day": 1}),
    ])


def test_a_nat_day_without_a_sample_is_missed_and_two_samples_count_once() -> None:
    p = Points()
    for ref in (A, B):
        for hour in (8, 20):
            p.observe(ref, MAY[13] + timedelta(hours=hour))
    p.observe(A, MAY[13] + timedelta(hours=9), "nat_sample", nat_result="negative")
    p.observe(A, MAY[13] + timedelta(hours=15), "nat_sample", nat_result=None)  # a second sample that day
    p.at(MAY[14] + timedelta(hours=2))
    (day,) = p.days()
    # 05-13: A's day 4 (a NAT day, sampled twice), B's day 2 (not a NAT day).
    assert (day["residents"], day["temperature"], day["nat"]) == (2, {"due": 4, "done": 4}, {"due": 1, "done": 1})
    assert p.missed() == []
    p.observe(A, MAY[16] + timedelta(hours=8))
    p.observe(A, MAY[16] + timedelta(hours=20))
    p.observe(B, MAY[16] + timedelta(hours=8))
    p.observe(B, MAY[16] + timedelta(hours=20))
    p.at(MAY[17] + timedelta(hours=2))
    # 05-14..05-16 close; 05-16 is A's day 7 and B's day 5: A's NAT day, no sample.
    assert (c.NAT_MISSED, A, "2022-05-16", {"date": "2022-05-16", "phase_day": 7}) in p.missed()
    assert p.days()[-1]["nat"] == {"due": 1, "done": 0}


def test_an_observation_after_its_day_closed_is_late_in_the_next_record_and_never_reopens_it() -> None:
    p = Points()
    p.observe(A, MAY[11] + timedelta(hours=8))
    p.at(MAY[12] + timedelta(hours=2))
    (closed,) = p.days()
    p.observe(A, MAY[11] + timedelta(hours=20))  # read after 05-11 closed
    p.h.clock.observe(0, (MAY[12] + timedelta(hours=2)).timestamp(), (MAY[12] + timedelta(hours=2)).timestamp())
    p.at(MAY[13] + timedelta(hours=2))
    assert [d["date"] for d in p.days()] == ["2022-05-11", "2022-05-12"]
    assert closed["temperature"] == {"due": 4, "done": 1}  # the late one did not change 05-11
    assert p.days()[1]["late"] == 1
    assert len([m for m in p.missed() if m[2] == "2022-05-11"]) == 2  # A short by one, C by two: once each


def test_a_fever_and_a_positive_sample_alert_at_once() -> None:
    p = Points()
    p.observe(A, MAY[11] + timedelta(hours=8), temperature_c=37.6)
    p.observe(B, MAY[12] + timedelta(hours=8), "nat_sample", nat_result="positive")
    assert [(a["kind"], a["severity"], a["person_ref"], a["venue_id"], a["details"]) for a in p.h.out.alerts()] == [
        (c.RESIDENT_FEVER, c.WARNING, A, "iso-1", {"temperature_c": 37.6}),
        (c.NAT_POSITIVE_ALERT, c.CRITICAL, B, "iso-1", {"nat_result": "positive"})]
    assert p.days() == []  # nothing closed yet
