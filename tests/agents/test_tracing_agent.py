"""Source tracing in one worker: a case traced over its partition's visits, exposures written
once, the trace put together from every partition's report, late visits, contacts stopped, and a
positive NAT starting a case of its own."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest

from streams.concepts.tracing import Tracing
from streams.contract import topics
from streams.times import utc_rfc3339
from streams.worker.app import HcsApp
from tests import factories as f
from tests.agents.conftest import RecordingSink, drive

T0 = f.T0.timestamp()
CASE = f.pseudonym(7001)
MALL = dict(venue_id="mall-1", venue_type="mall", checkpoint_id="mall-1-a")


def at(minutes: float) -> Any:
    return f.T0 + timedelta(minutes=minutes)


def scans(app: HcsApp, venue: bytes, *values: Any) -> None:
    drive(app, "judge_scans", [(venue, f.encode(v), 0, T0) for v in values])


def case(case_id: str = "HZ-1", person: str = CASE, **overrides: Any) -> bytes:
    value = {"schema": "hcs.case.v1", "event_id": f"ev-{case_id}", "case_id": case_id, "person_ref": person,
             "district": "330106", "classification": "confirmed", "sampled_at": f.ts(at(24 * 60)),
             "onset_at": None, "reported_at": f.ts(at(26 * 60))}
    value.update(overrides)
    return orjson.dumps(value)


@pytest.fixture
def traced(hcs_app: tuple[HcsApp, RecordingSink, Any]) -> tuple[HcsApp, RecordingSink, Tracing]:
    app, sink, _ = hcs_app
    tracing = app.wiring.tracing
    assert tracing is not None and app.wiring.visits is not None
    app.wiring.visits.clock = lambda: T0 + 3 * 86400  # the wall clock: visits within retention
    return app, sink, tracing


def tick(app: HcsApp, tracing: Tracing, now: float) -> int:
    done = tracing.trace_pending(now)
    app.wiring.flush()
    return done


def test_a_case_is_traced_to_exactly_the_people_who_shared_its_venue_long_enough_once(
        traced: tuple[HcsApp, RecordingSink, Tracing]) -> None:
    app, sink, tracing = traced
    # The mall's dwell is 90 minutes: the case's visit is [0, 90].
    scans(app, b"mall-1",
          f.scan(**MALL, person_ref=CASE, at=at(0)),
          f.scan(**MALL, person_ref=f.pseudonym(1), at=at(80)),  # [80, 170]: exactly 10 minutes
          f.scan(**MALL, person_ref=f.pseudonym(2), at=at(81)),  # 9 minutes: no contact
          f.scan(**MALL, person_ref=f.pseudonym(3), at=at(-85)),  # [-85, 5]: 5 minutes
          f.scan(**MALL, person_ref=f.pseudonym(4), at=at(-30)),  # [-30, 60]: 60 minutes
          f.scan(venue_id="mall-2", venue_type="mall", checkpoint_id="mall-2-a", person_ref=f.pseudonym(5),
                 at=at(0)))  # the same time, another venue
    tracing.apply(CASE.encode(), case())
    assert tick(app, tracing, T0 + 3 * 86400) == 1
    exposures = sink.of(topics.EXPOSURES)
    assert {e["person_ref"]: e["overlap_minutes"] for e in exposures} == {f.pseudonym(1): 10.0, f.pseudonym(4): 60.0}
    assert len(exposures) == 2
    assert {(e["exposure_id"], e["venue_type"], e["district"], e["_key"]) for e in exposures} == {
        (f"HZ-1|{f.pseudonym(n)}|mall-1", "mall", "330106", f.pseudonym(n)) for n in (1, 4)}
    assert {e["person_ref"]: e["first_overlap_at"] for e in exposures} == {
        f.pseudonym(1): utc_rfc3339(T0 + 80 * 60), f.pseudonym(4): utc_rfc3339(T0)}
    assert tick(app, tracing, T0 + 3 * 86400 + 1) == 0  # traced once on this partition
    tracing.apply(CASE.encode(), case())  # the same case reported again
    assert tick(app, tracing, T0 + 3 * 86400 + 2) == 0 and len(sink.of(topics.EXPOSURES)) == 2


def test_every_partitions_report_makes_the_trace_complete_once_with_case_traced(
        traced: tuple[HcsApp, RecordingSink, Tracing]) -> None:
    app, sink, tracing = traced
    scans(app, b"mall-1", f.scan(**MALL, person_ref=CASE, at=at(0)),
          f.scan(**MALL, person_ref=f.pseudonym(1), at=at(5)))
    tracing.apply(CASE.encode(), case())
    tick(app, tracing, T0 + 3 * 86400)
    (own,) = sink.sent[topics.TRACE_REPORTS.name]
    assert (own["source"], own["visits"], own["venues"], own["contacts"]) == (0, 1, ["mall-1"], [f.pseudonym(1)])
    reports = [orjson.dumps({**own, "source": p, "visits": 0, "venues": [], "contacts": []}) for p in range(1, 8)]
    reports.insert(3, orjson.dumps({k: v for k, v in own.items() if k != "_key"}))
    reports.append(reports[0])  # a report sent again after a crash
    drive(app, "combine_traces", [(b"HZ-1", r, 0, T0) for r in reports])
    traces = sink.of(topics.TRACES)
    assert [t["status"] for t in traces] == ["running"] * 7 + ["complete"]
    assert (traces[-1]["visits"], traces[-1]["venues"], traces[-1]["contacts"]) == (1, 1, 1)
    (alert,) = [a for a in sink.of(topics.ALERTS) if a["kind"] == "CASE_TRACED"]
    assert (alert["dedup_key"], alert["severity"], alert["venue_id"], alert["details"]) == (
        "CASE_TRACED|HZ-1", "warning", "hcs.cases.v1", {"visits": 1, "venues": 1, "contacts": 1})


def test_a_late_visit_at_a_traced_venue_adds_its_exposure_and_a_late_visit_of_the_case_adds_its_venue(
        traced: tuple[HcsApp, RecordingSink, Tracing]) -> None:
    app, sink, tracing = traced
    scans(app, b"mall-1", f.scan(**MALL, person_ref=CASE, at=at(0)))
    tracing.apply(CASE.encode(), case())
    tick(app, tracing, T0 + 3 * 86400)
    assert sink.of(topics.EXPOSURES) == []
    scans(app, b"mall-1", f.scan(**MALL, person_ref=f.pseudonym(1), at=at(30)))  # an offline device's upload
    assert [e["person_ref"] for e in sink.of(topics.EXPOSURES)] == [f.pseudonym(1)]
    scans(app, b"mall-1", f.scan(**MALL, person_ref=f.pseudonym(1), at=at(40)))  # no second exposure
    school = dict(venue_id="school-1", venue_type="school", checkpoint_id="school-1-a")
    scans(app, b"school-1", f.scan(**school, person_ref=f.pseudonym(2), at=at(60)))
    scans(app, b"school-1", f.scan(**school, person_ref=CASE, at=at(120)))  # the case's own, uploaded late
    assert [e["person_ref"] for e in sink.of(topics.EXPOSURES)] == [f.pseudonym(1), f.pseudonym(2)]


def test_a_contacts_next_scan_anywhere_is_denied_and_alerted_but_reported_at_a_hospital(
        traced: tuple[HcsApp, RecordingSink, Tracing]) -> None:
    app, sink, _ = traced
    contacts = app.wiring.contacts
    assert contacts is not None
    exposure = {"schema": "hcs.exposure.v1", "exposure_id": "HZ-1|x|mall-1", "case_id": "HZ-1",
                "person_ref": f.pseudonym(1), "venue_id": "mall-1", "venue_type": "mall", "district": "330106",
                "first_overlap_at": f.ts(at(0)), "overlap_minutes": 30.0, "traced_at": f.ts(at(60))}
    contacts.apply(f.pseudonym(1).encode(), orjson.dumps(exposure))
    office = dict(venue_id="office-9", venue_type="office", checkpoint_id="office-9-a")
    hospital = dict(venue_id="hospital-9", venue_type="hospital", checkpoint_id="hospital-9-a")
    scans(app, b"office-9", f.scan(**office, person_ref=f.pseudonym(1), at=at(2 * 24 * 60)),
          f.scan(**office, person_ref=f.pseudonym(1), at=at(30 + 7 * 24 * 60 + 1)))  # after the flag ends
    scans(app, b"hospital-9", f.scan(**hospital, person_ref=f.pseudonym(1), at=at(3 * 24 * 60)))
    decisions = [(d["venue_id"], d["decision"], d["reasons"]) for d in sink.of(topics.DECISIONS)]
    assert decisions == [("office-9", "DENY", ["TRACED_CONTACT"]), ("office-9", "ALLOW", []),
                         ("hospital-9", "ALLOW_WITH_REPORT", ["TRACED_CONTACT"])]
    alerts = [a for a in sink.of(topics.ALERTS) if a["kind"] == "CONTACT_DETECTED"]
    details = {"case_ids": ["HZ-1"], "last_exposure_at": utc_rfc3339(T0 + 30 * 60)}
    assert [(a["venue_id"], a["severity"], a["details"]) for a in alerts] == [
        ("office-9", "critical", details), ("hospital-9", "critical", details)]


def test_a_positive_nat_read_starts_one_case_per_person_and_sample(
        traced: tuple[HcsApp, RecordingSink, Tracing]) -> None:
    app, sink, _ = traced
    positive = {"result": "positive", "sampled_at": f.ts(at(-600)), "reported_at": None}
    first = f.scan(**MALL, person_ref=CASE, nat=positive, at=at(0))
    scans(app, b"mall-1", first, f.scan(**MALL, person_ref=CASE, nat=positive, at=at(30)))
    (reported,) = sink.of(topics.CASES)
    assert (reported["case_id"], reported["person_ref"], reported["_key"], reported["district"]) == (
        f"nat|{first['event_id']}", CASE, CASE, "330106")


def test_what_tracing_keeps_is_forgotten_after_the_retention_and_an_old_case_is_never_traced_again(
        traced: tuple[HcsApp, RecordingSink, Tracing]) -> None:
    app, sink, tracing = traced
    scans(app, b"mall-1", f.scan(**MALL, person_ref=CASE, at=at(0)),
          f.scan(**MALL, person_ref=f.pseudonym(1), at=at(5)))
    tracing.apply(CASE.encode(), case())
    now = T0 + 3 * 86400
    tick(app, tracing, now)
    assert len(tracing.exposed) == 1 and len(tracing.marks) == 1 and tracing.cases.data
    assert tracing.forget(now + 86400) == 0  # all still of use
    later = now + 22 * 86400  # past the retention (14 days) and the flag (7 days) after them
    assert tracing.forget(later) == 3  # the exposure's mark, the trace's mark, the case
    app.wiring.flush()
    assert len(tracing.exposed) == 0 and len(tracing.marks) == 0 and not tracing.cases.data
    tracing.apply(CASE.encode(), case())  # read again (a restart reads the cases topic whole)
    assert tick(app, tracing, later) == 0 and len(sink.of(topics.EXPOSURES)) == 1
