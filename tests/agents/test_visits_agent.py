"""Every decided scan a visit, on disk, for source tracing; kept no longer than its retention."""

from __future__ import annotations

from typing import Any, cast
from unittest.mock import MagicMock

from streams.concepts.visits import Visits
from streams.kafka.visits import VisitStore
from streams.rules.tracing import DAY_S, Visit
from streams.worker.app import HcsApp
from tests import factories as f
from tests.agents.conftest import drive

T0 = f.T0.timestamp()


def run(app: HcsApp, key: bytes, *values: Any) -> None:
    drive(app, "judge_scans", [(key, f.encode(v), 0, T0) for v in values])


def parts(app: HcsApp) -> tuple[Visits, VisitStore, MagicMock]:
    visits = app.wiring.visits
    assert visits is not None
    visits.clock = lambda: T0 + 3600  # the wall clock of the test: an hour after the scans
    return visits, cast(VisitStore, visits.log), cast(MagicMock, visits.send)


def test_each_decided_scan_is_a_visit_of_its_venue_types_dwell_and_an_isolation_point_makes_none(
        hcs_app: tuple[HcsApp, Any, Any]) -> None:
    app = hcs_app[0]
    _, store, send = parts(app)
    mall = f.scan(venue_id="mall-1", venue_type="mall", checkpoint_id="mall-1-a", health_code={"color": "red"})
    school = f.scan(venue_id="mall-1", venue_type="school", checkpoint_id="mall-1-b", person_ref=mall["person_ref"])
    point = f.scan(venue_id="point-1", venue_type="isolation_point", checkpoint_id="point-1-a",
                   person_ref=mall["person_ref"])
    run(app, b"mall-1", mall, school, mall)  # the mall scan redelivered: one visit
    run(app, b"point-1", point)
    person = mall["person_ref"]
    assert list(store.of_person(0, person, T0 - DAY_S, T0 + DAY_S)) == [
        Visit("mall-1", int(T0), mall["event_id"], person, int(T0) + 90 * 60),  # denied: a visit all the same
        Visit("mall-1", int(T0), school["event_id"], person, int(T0) + 480 * 60)]
    written = [record for call in send.call_args_list for record in call.args[1]]
    assert len(written) == 2 and all(value is not None for _, value in written)


def test_visits_past_retention_are_deleted_with_a_tombstone_each_and_never_read(
        hcs_app: tuple[HcsApp, Any, Any]) -> None:
    app = hcs_app[0]
    visits, store, send = parts(app)
    scan = f.scan(venue_id="mall-1", venue_type="mall")
    run(app, b"mall-1", scan)
    send.reset_mock()
    assert visits.sweep(T0 + 14 * DAY_S) == 0  # exactly the retention: kept
    assert visits.sweep(T0 + 14 * DAY_S + 1) == 1
    ((partition, records),) = [call.args for call in send.call_args_list]
    assert partition == 0 and [value for _, value in records] == [None]
    visits.clock = lambda: T0  # even were it not past retention, it is gone from the disk
    assert list(store.at_venue(0, "mall-1", 0, T0 * 2)) == []


def test_a_visit_past_retention_is_not_read_even_before_the_sweep(hcs_app: tuple[HcsApp, Any, Any]) -> None:
    app = hcs_app[0]
    visits, store, _ = parts(app)
    run(app, b"mall-1", f.scan(venue_id="mall-1", venue_type="mall"))
    assert len(list(store.at_venue(0, "mall-1", 0, T0 * 2))) == 1
    visits.clock = lambda: T0 + 14 * DAY_S + 1
    assert list(store.at_venue(0, "mall-1", 0, T0 * 2)) == []


def test_a_scan_already_past_retention_makes_no_visit(hcs_app: tuple[HcsApp, Any, Any]) -> None:
    app = hcs_app[0]
    visits, store, send = parts(app)
    visits.clock = lambda: T0 + 14 * DAY_S + 1  # the scan's upload came late: its visit is already too old
    run(app, b"mall-1", f.scan(venue_id="mall-1", venue_type="mall"))
    assert store.started_before(0, T0 * 2, limit=10) == [] and send.call_args_list == []
