"""The checkpoint simulator: reproducible, realistic, pseudonymous."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import orjson

from streams.contract.codec import decode_entries, decode_finding_event, decode_scans
from streams.contract.models import EntryCount, FindingEvent, Rejected, ScanEvent
from streams.dev.device import person_ref
from streams.dev.simulate import DISTRICTS, Mix, Simulator
from streams.times import SHANGHAI
from tests import factories as f
from tests.schema_check import assert_valid


def clock() -> Iterator[datetime]:
    return (f.T0 + timedelta(milliseconds=100 * i) for i in range(10**9))


def test_the_same_seed_makes_the_same_stream() -> None:
    a = [v for _, v, _ in Simulator(seed=9).records(2000, clock=clock())]
    b = [v for _, v, _ in Simulator(seed=9).records(2000, clock=clock())]
    c = [v for _, v, _ in Simulator(seed=10).records(2000, clock=clock())]
    assert a == b and a != c


def test_the_stream_is_valid_with_the_faults_it_was_asked_for() -> None:
    sim = Simulator(seed=3)
    items = [item for key, value, _ in sim.records(5000, clock=clock()) for item in decode_scans(value, key)]
    scans = [i for i in items if isinstance(i, ScanEvent)]
    rejected = [i for i in items if isinstance(i, Rejected)]
    assert len(rejected) == sim.counts["malformed_records"] > 0
    assert len(scans) == 5000 + sim.counts["duplicate_records"]
    assert {s.district for s in scans} == set(DISTRICTS)
    assert {s.color for s in scans} == {"green", "yellow", "red", "unknown"}
    assert len({s.venue_type for s in scans}) == 12


def test_person_references_are_keyed_hashes_never_ids() -> None:
    sim = Simulator(seed=1)
    values = [orjson.loads(v) for _, v, _ in sim.records(200, clock=clock()) if v.startswith(b"{\"schema\":\"hcs.scan")]
    refs = {v["person_ref"] for v in values}
    assert all(re.fullmatch(r"[0-9a-f]{64}", r) for r in refs)
    assert person_ref("SIM00010000000001", b"k" * 32) != person_ref("SIM00010000000001", b"j" * 32)


def test_gateway_batches_hold_the_scans_of_one_venue() -> None:
    sim = Simulator(seed=2)
    for key, value, n in sim.records(1000, batch=100, clock=clock()):
        if n:
            items = decode_scans(value, key)
            assert len(items) == n and all(isinstance(i, ScanEvent) and i.venue_id == key.decode() for i in items)


def test_entry_counts_cover_every_scanned_checkpoint_minute() -> None:
    sim = Simulator(seed=4)
    scanned = sum(n for _, _, n in sim.records(3000, clock=clock()))
    counts = [decode_entries(v) for _, v in sim.entry_counts(float("inf"))]
    assert all(isinstance(c, EntryCount) for c in counts)
    assert sum(c.entries for c in counts if isinstance(c, EntryCount)) >= scanned


def test_each_counter_minute_is_reported_once_even_with_late_uploads() -> None:
    sim = Simulator(seed=6, venues_per_district=1, mix=Mix(late=0.0, duplicate=0.0, malformed=0.0))
    on_time = (f.T0 + timedelta(milliseconds=10 * i) for i in range(6000))  # 08:00:00 to 08:00:59
    list(sim.records(6000, clock=on_time))
    ids = [orjson.loads(v)["event_id"] for _, v in sim.entry_counts((f.T0 + timedelta(minutes=2)).timestamp())]
    # Ten minutes later, uploads 6 to 90 minutes late: some belong to 08:00, already reported.
    sim.mix = Mix(late=1.0, duplicate=0.0, malformed=0.0)
    late = (f.T0 + timedelta(minutes=10) for _ in range(5000))
    list(sim.records(5000, clock=late))
    ids += [orjson.loads(v)["event_id"] for _, v in sim.entry_counts(float("inf"))]
    assert len(ids) == len(set(ids))


def test_a_run_id_changes_only_the_event_ids() -> None:
    def parse(value: bytes) -> object:
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value  # a malformed record, sent on purpose

    def without_id(value: object) -> object:
        return {k: v for k, v in value.items() if k != "event_id"} if isinstance(value, dict) else value

    a = [parse(v) for _, v, _ in Simulator(seed=9, run_id="r1").records(3000, clock=clock())]
    b = [parse(v) for _, v, _ in Simulator(seed=9, run_id="r2").records(3000, clock=clock())]
    ids_a = {s["event_id"] for s in a if isinstance(s, dict) and "event_id" in s}
    ids_b = {s["event_id"] for s in b if isinstance(s, dict) and "event_id" in s}
    assert ids_a and not ids_a & ids_b
    assert [without_id(s) for s in a] == [without_id(s) for s in b]


def test_managed_people_get_valid_plans_of_every_kind_and_are_among_the_scanned() -> None:
    from collections import Counter

    from streams.contract.codec import decode_plan
    from streams.rules.management import phase_on
    from streams.times import shanghai_day
    from tests.schema_check import assert_valid

    sim = Simulator(seed=5, people=400, managed=200)
    records = list(sim.plans(f.T0))
    assert len(records) == 200 == sim.counts["plans"] + sim.counts["plans_released"]
    plans: dict[str, Any] = {}
    labels: Counter[str] = Counter()
    released = 0
    for key, value in records:
        assert_valid("management.v1", [orjson.loads(value)])
        decoded = decode_plan(key, value)
        assert not isinstance(decoded, Rejected), decoded
        ref, plan = decoded
        labels[orjson.loads(value)["plan"]] += 1
        if plan is None:
            released += 1
        else:
            plans[ref] = plan
    assert set(labels) == {"14+7+7", "7+3", "2+14"} and released == sim.counts["plans_released"] > 0
    today = shanghai_day(f.T0.timestamp())
    phases = Counter(p.kind if (p := phase_on(plan, today)) else None for plan in plans.values())
    assert {"centralized_isolation", "home_isolation", "health_monitoring", None} <= set(phases)
    assert any(plan.end_day == today for plan in plans.values())  # some on their last day
    scans = [item for key, value, _ in sim.records(3000, clock=clock()) for item in decode_scans(value, key)
             if isinstance(item, ScanEvent)]
    managed = [s for s in scans if s.person_ref in plans]
    assert len(managed) > 100
    at_own_point = [s for s in managed if s.venue_id == plans[s.person_ref].isolation_point_id]
    assert at_own_point and any(s.venue_id != plans[s.person_ref].isolation_point_id for s in managed)


def test_isolation_point_residents_get_their_staffs_observations_with_some_missed() -> None:
    from collections import Counter

    from streams.contract.codec import decode_observation
    from streams.contract.models import Observation
    from tests.schema_check import assert_valid

    sim = Simulator(seed=5, people=400, managed=200)
    list(sim.plans(f.T0))
    first = list(sim.observations(f.T0 + timedelta(hours=2)))  # 10:00: the last two days, and today's 08:00 and 09:00
    assert first and sim.counts["temperature_missed"] > 0
    decoded = [decode_observation(value) for _, value in first]
    assert all(isinstance(o, Observation) for o in decoded), [o for o in decoded if not isinstance(o, Observation)]
    assert_valid("observation.v1", [orjson.loads(value) for _, value in first])
    days = Counter(datetime.fromtimestamp(o.observed_at, f.T0.tzinfo).date() for o in decoded
                   if isinstance(o, Observation))
    assert sorted(days) == [(f.T0 - timedelta(days=n)).date() for n in (2, 1, 0)]
    kinds = Counter(o.kind for o in decoded if isinstance(o, Observation))
    assert kinds["temperature"] > kinds["nat_sample"] > 0
    assert all(key.decode() == orjson.loads(value)["isolation_point_id"] for key, value in first)
    assert list(sim.observations(f.T0 + timedelta(hours=2))) == []  # nothing is sent twice
    later = list(sim.observations(f.T0 + timedelta(hours=13)))  # 21:00: the 20:00 checks
    assert later and all("T20:" in orjson.loads(v)["observed_at"] for _, v in later)


def test_findings_come_as_inspections_would_and_each_event_is_one_the_worker_accepts() -> None:
    sim = Simulator(run_id="t")
    start = datetime(2022, 5, 10, 8, tzinfo=SHANGHAI)
    sent = list(sim.findings(start))
    assert Counter(orjson.loads(v)["action"] for _, v in sent) == {"open": 24, "rectify": 18, "verify": 12}
    for k in range(1, 121):  # ten minutes, a call every five seconds
        sent += sim.findings(start + timedelta(seconds=5 * k))
    actions = Counter(orjson.loads(v)["action"] for _, v in sent)
    assert 24 + 15 <= actions["open"] <= 24 + 50  # about one every 20 s
    assert actions["rectify"] - 18 >= (actions["open"] - 24) // 2 and actions["verify"] > 12
    decoded = [decode_finding_event(v, (start + timedelta(minutes=10)).timestamp()) for _, v in sent]
    refused = [d for d in decoded if not isinstance(d, FindingEvent)]
    assert not refused, refused[:1]
    assert all(k.decode() == orjson.loads(v)["venue_id"] for k, v in sent)
    assert_valid("finding-event.v1", [orjson.loads(v) for _, v in sent])


def test_a_case_is_reported_45_s_in_and_then_every_interval_of_someone_scanned_in_the_last_hour() -> None:
    from streams.contract.codec import decode_case

    sim = Simulator(seed=3, case_every_s=300)
    start = datetime.now(SHANGHAI)
    scanned = {sim.scan(start)[1]["person_ref"] for _ in range(200)}
    assert list(sim.cases(start)) == [] and list(sim.cases(start + timedelta(seconds=44))) == []
    ((key, value),) = list(sim.cases(start + timedelta(seconds=45)))
    case = decode_case(value, now=(start + timedelta(seconds=45)).timestamp())
    assert not isinstance(case, Rejected) and case.person_ref in scanned and key == case.person_ref.encode()
    assert list(sim.cases(start + timedelta(seconds=300))) == []
    assert len(list(sim.cases(start + timedelta(seconds=345)))) == 1
    assert list(Simulator(seed=3).cases(start + timedelta(hours=1))) == []  # none unless asked for


def test_the_run_heartbeat_sums_the_workers_counters() -> None:
    from streams.dev.local import heartbeat
    from streams.metrics import Metrics

    metrics = Metrics()
    metrics.scans("330106", "mall", "ALLOW").inc(500)
    metrics.scans("330105", "school", "DENY").inc(100)
    metrics.alerts("330106", "KEY_PERSON_DETECTED", "critical").inc(4)
    metrics.dead_letters("hcs.scans.v1", "NOT_JSON").inc(2)
    metrics.escalations("330106", "critical", "1").inc(4)  # the triggers: not escalations
    metrics.watch_incidents(lambda: {("330106", "TRIGGERED"): 3, ("330106", "ACKNOWLEDGED"): 1,
                                     ("330106", "RESOLVED"): 7})
    first, totals = heartbeat(metrics.exposition().decode(), None, 30)
    assert first.endswith("600 scans judged, 4 alerts, 2 dead letters, 0 escalations, 4 incidents open"), first
    metrics.scans("330106", "mall", "ALLOW").inc(900)
    metrics.alerts("330106", "KEY_PERSON_DETECTED", "critical").inc(1)
    metrics.escalations("330106", "critical", "2").inc(1)
    second, _ = heartbeat(metrics.exposition().decode(), totals, 30)
    assert "1,500 scans judged (30/s), 5 alerts (+1), 2 dead letters (+0), 1 escalations (+1)" in second, second
