"""Managed personnel: a plan's phase by Asia/Shanghai day, its reason and alert at each venue, on
every boundary; the register's records (decoding, replacement, release, tombstones, refusals)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from streams.concepts.register import Register
from streams.contract.codec import decode_plan
from streams.contract.models import Plan, Rejected
from streams.rules import codes as c
from streams.rules.judge import Judgement, judge
from streams.rules.management import HEALTH_MONITORING, PhaseOn, phase_on, restriction
from streams.times import SHANGHAI, shanghai_day
from tests import factories as f
from tests.unit.rules_helpers import DEFAULT, decoded

START = datetime(2022, 5, 10, tzinfo=SHANGHAI)  # day 1 of the default 14+7+7 plan
PERSON = f.pseudonym(1)


def local(day: int, hh: int = 12, mm: int = 0) -> datetime:
    """Plan day ``day`` (1 = start_date) at hh:mm, Shanghai time."""
    return START + timedelta(days=day - 1, hours=hh, minutes=mm)


def the_plan(**overrides: Any) -> Plan:
    decoded_plan = decode_plan(PERSON.encode(), f.encode(f.plan(PERSON, **overrides)))
    assert not isinstance(decoded_plan, Rejected), decoded_plan
    _, value = decoded_plan
    assert value is not None
    return value


def scanned(plan: Plan | None, when: datetime, venue_type: str = "supermarket", venue_id: str = "venue-1") -> Judgement:
    scan = decoded(f.scan(at=when, person_ref=PERSON, venue_type=venue_type, venue_id=venue_id))
    _, params = DEFAULT.params(scan.event_time, scan.district, scan.venue_type)
    managed = None
    if plan is not None and (phase := phase_on(plan, shanghai_day(scan.event_time))) is not None:
        managed = restriction(plan, phase, scan.venue_id, params.isolation_action, params.monitoring_action)
    return judge(scan, params, False, managed)


def test_phases_are_walked_by_shanghai_calendar_day_from_day_1() -> None:
    plan = the_plan()
    day1 = shanghai_day(START.timestamp())
    assert phase_on(plan, day1 - 1) is None  # the day before day 1
    assert phase_on(plan, day1) == PhaseOn("centralized_isolation", 1)
    assert phase_on(plan, day1 + 13) == PhaseOn("centralized_isolation", 14)
    assert phase_on(plan, day1 + 14) == PhaseOn("home_isolation", 15)
    assert phase_on(plan, day1 + 21) == PhaseOn(HEALTH_MONITORING, 22)
    assert phase_on(plan, day1 + 27) == PhaseOn(HEALTH_MONITORING, 28)  # the last day
    assert phase_on(plan, day1 + 28) is None  # the day after
    assert plan.end_day == day1 + 27


@pytest.mark.parametrize(("when", "decision", "reasons", "alerts"), [
    (local(0, 23, 59), c.ALLOW, (), ()),  # 23:59 the day before day 1: not managed yet
    (local(1, 0, 1), c.DENY, (c.ISOLATION_BREACH,), (c.ISOLATION_BREACH_ALERT,)),
    (local(14, 23, 59), c.DENY, (c.ISOLATION_BREACH,), (c.ISOLATION_BREACH_ALERT,)),  # centralized, last minute
    (local(15, 0, 1), c.DENY, (c.ISOLATION_BREACH,), (c.ISOLATION_BREACH_ALERT,)),  # home isolation, first minute
    (local(21, 23, 59), c.DENY, (c.ISOLATION_BREACH,), (c.ISOLATION_BREACH_ALERT,)),
    (local(22, 0, 1), c.ALLOW_WITH_REPORT, (c.UNDER_HEALTH_MONITORING,), ()),  # monitoring: a supermarket reports
    (local(28, 23, 59), c.ALLOW_WITH_REPORT, (c.UNDER_HEALTH_MONITORING,), ()),
    (local(29, 0, 1), c.ALLOW, (), ()),  # the day after the last: released by the calendar
])
def test_a_supermarket_scan_on_each_side_of_every_boundary(when: datetime, decision: str, reasons: tuple[str, ...],
                                                            alerts: tuple[str, ...]) -> None:
    verdict = scanned(the_plan(), when)
    assert (verdict.decision, verdict.reasons, tuple(a.kind for a in verdict.alerts)) == (decision, reasons, alerts)


def test_the_isolation_point_itself_adds_nothing_and_home_isolation_has_no_such_place() -> None:
    plan = the_plan()
    at_point = scanned(plan, local(3), venue_type="isolation_point", venue_id="iso-1")
    assert (at_point.decision, at_point.reasons, at_point.alerts) == (c.ALLOW, (), ())
    other_point = scanned(plan, local(3), venue_type="isolation_point", venue_id="iso-2")
    assert other_point.reasons == (c.ISOLATION_BREACH,)
    at_home_phase = scanned(plan, local(16), venue_type="isolation_point", venue_id="iso-1")
    assert at_home_phase.reasons == (c.ISOLATION_BREACH,)  # in home isolation the point is any venue


@pytest.mark.parametrize(("venue_type", "decision", "alerts"), [
    ("nursing_home", c.DENY, (c.MONITORING_RESTRICTED,)), ("school", c.DENY, (c.MONITORING_RESTRICTED,)),
    ("kindergarten", c.DENY, (c.MONITORING_RESTRICTED,)), ("transport_hub", c.DENY, (c.MONITORING_RESTRICTED,)),
    ("supermarket", c.ALLOW_WITH_REPORT, ()), ("office", c.ALLOW_WITH_REPORT, ()),
])
def test_green_but_restricted_is_denied_only_where_monitoring_action_is_deny(
        venue_type: str, decision: str, alerts: tuple[str, ...]) -> None:
    verdict = scanned(the_plan(), local(23), venue_type=venue_type)
    assert verdict.decision == decision and verdict.reasons == (c.UNDER_HEALTH_MONITORING,)
    assert tuple(a.kind for a in verdict.alerts) == alerts
    assert all(a.severity == c.WARNING for a in verdict.alerts)


def test_a_breach_is_critical_and_the_precedence_of_the_decision_is_unchanged() -> None:
    plan = the_plan()
    breach = scanned(plan, local(2))
    assert [(a.kind, a.severity, a.reasons) for a in breach.alerts] == [
        (c.ISOLATION_BREACH_ALERT, c.CRITICAL, (c.ISOLATION_BREACH,))]
    # A report-level breach (isolation_action report) allows with report, and still alerts.
    scan = decoded(f.scan(at=local(2), person_ref=PERSON, venue_type="supermarket"))
    _, params = DEFAULT.params(scan.event_time, scan.district, scan.venue_type)
    phase = phase_on(plan, shanghai_day(scan.event_time))
    assert phase is not None
    reported = judge(scan, params, False, restriction(plan, phase, "venue-1", "report", "report"))
    assert reported.decision == c.ALLOW_WITH_REPORT and [a.kind for a in reported.alerts] == [c.ISOLATION_BREACH_ALERT]
    # A fever under monitoring at a report-level venue is still a RECHECK first.
    feverish = decoded(f.scan(at=local(23), person_ref=PERSON, temperature_c=37.8))
    phase = phase_on(plan, shanghai_day(feverish.event_time))
    assert phase is not None
    _, params = DEFAULT.params(feverish.event_time, feverish.district, feverish.venue_type)
    first = judge(feverish, params, False, restriction(plan, phase, "venue-1", "deny", "report"))
    assert first.decision == c.RECHECK and first.reasons == (c.FEVER, c.UNDER_HEALTH_MONITORING)


def test_a_plan_extended_mid_phase_replaces_the_old_one_and_release_or_a_tombstone_ends_it() -> None:
    register = Register("hcs.management.v1")
    key = PERSON.encode()
    register.apply(key, f.encode(f.plan(PERSON, phases=(("centralized_isolation", 7), ("health_monitoring", 3)))))
    day9 = local(9)
    assert scanned(register.get(PERSON), day9).reasons == (c.UNDER_HEALTH_MONITORING,)
    # Extended mid-phase: the register sends the person's new plan; the later record wins.
    register.apply(key, f.encode(f.plan(PERSON, plan_id="plan-1b", phases=(("centralized_isolation", 14),))))
    assert scanned(register.get(PERSON), day9).reasons == (c.ISOLATION_BREACH,)
    assert register.shapes.total() == 1
    register.apply(key, f.encode(f.plan(PERSON, status="released")))
    assert register.get(PERSON) is None and scanned(register.get(PERSON), day9).decision == c.ALLOW
    register.apply(key, f.encode(f.plan(PERSON)))
    register.apply(key, None)  # a tombstone
    assert register.get(PERSON) is None and not register.shapes


def test_an_invalid_record_is_refused_with_its_field_and_the_previous_plan_stays() -> None:
    register = Register("hcs.management.v1")
    key = PERSON.encode()
    register.apply(key, f.encode(f.plan(PERSON)), partition=2, offset=10)
    bad = [
        ({**f.plan(PERSON), "phases": [{"kind": "quarantine_hotel", "days": 7}]}, "phases"),
        (f.plan(PERSON, isolation_point_id=None), "isolation_point_id"),
        (f.plan(PERSON, start_date="10/05/2022"), "start_date"),
        (f.plan(f.pseudonym(2)), "person_ref"),  # not the record's key
        ({**f.plan(PERSON), "phases": [{"kind": "home_isolation", "days": 61}], "isolation_point_id": None}, "phases"),
        ({**f.plan(PERSON), "phases": []}, "phases"),
    ]
    for offset, (value, _) in enumerate(bad, start=11):
        register.apply(key, f.encode(value), partition=2, offset=offset)
    assert register.get(PERSON) == the_plan()  # still the first plan
    refused = register.take_refused()
    assert [(where.partition, where.offset) for _, where in refused] == [(2, o) for o in range(11, 11 + len(bad))]
    for (rejected, _), (_, field) in zip(refused, bad, strict=True):
        assert rejected.reason == "SCHEMA_INVALID" and rejected.detail.startswith(field), rejected.detail
    assert register.take_refused() == []
    not_a_ref = decode_plan(b"Zhang San", f.encode(f.plan(PERSON)))
    assert isinstance(not_a_ref, Rejected) and not_a_ref.detail.startswith("key:")


def test_managed_persons_are_counted_by_managing_district_and_todays_phase() -> None:
    register = Register("hcs.management.v1")
    for n, start in enumerate(("2022-05-10", "2022-05-10", "2022-04-20", "2022-06-30"), start=10):
        ref = f.pseudonym(n)
        register.apply(ref.encode(), f.encode(f.plan(ref, start=start)))
    today = shanghai_day(local(3).timestamp())  # 2022-05-12: day 3 of two plans, day 23 of one
    assert register.managed_on(today) == {("330105", "centralized_isolation"): 2, ("330105", HEALTH_MONITORING): 1}
