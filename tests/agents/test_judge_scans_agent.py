"""The judge_scans agent in Faust's test context: dedup, rechecks, alert dedup, dead letters."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast
from unittest.mock import MagicMock

from streams.contract import topics
from streams.worker.app import HcsApp
from tests import factories as f
from tests.agents.conftest import RecordingPartials, RecordingSink, drive, make_app

Harness = tuple[HcsApp, RecordingSink, MagicMock]


def run(app: HcsApp, *values: Any, key: bytes = b"venue-1") -> None:
    # Uploaded at one fixed time (not the wall clock): runs compare equal, state included.
    drive(app, "judge_scans", [(key, v if isinstance(v, bytes) else f.encode(v), 0, f.T0.timestamp())
                               for v in values])


def tick(app: HcsApp, job: Callable[[float], int], now: float) -> int:
    """Run a timer's job as its timer does: the job, then the flush of state changes."""
    done = job(now)
    app.wiring.flush()
    return done


def sample(app: HcsApp, name: str, **labels: str) -> float:
    value = app.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_a_redelivered_scan_yields_one_decision_and_is_counted(hcs_app: Harness) -> None:
    app, sink, changelog = hcs_app
    red = f.scan(health_code={"color": "red"})
    run(app, red, red)
    assert [d["event_id"] for d in sink.of(topics.DECISIONS)] == [red["event_id"]]
    assert len(sink.of(topics.ALERTS)) == 1
    assert sample(app, "hcs_duplicates_total", topic="hcs.scans.v1") == 1
    assert sample(app, "hcs_scans_total", district="330106", venue_type="mall", decision="DENY") == 1
    # The dedup id went to the changelog of the scan's partition, so a restart remembers it.
    marks = [call.args for call in changelog.call_args_list if call.args[1] == "e|" + red["event_id"]]
    assert len(marks) == 1 and marks[0][0] == 0 and marks[0][2] is not None  # once, on partition 0


def test_fever_recheck_still_hot_is_denied_and_confirmed(hcs_app: Harness) -> None:
    app, sink, _ = hcs_app
    first = f.scan(temperature_c=38.1)
    again = f.scan(at=f.T0 + timedelta(minutes=15), person_ref=first["person_ref"], temperature_c=37.9)
    run(app, first, again)
    assert [d["decision"] for d in sink.of(topics.DECISIONS)] == ["RECHECK", "DENY"]
    assert sink.of(topics.DECISIONS)[1]["reasons"] == ["FEVER"]
    (alert,) = sink.of(topics.ALERTS)
    assert (alert["kind"], alert["severity"], alert["event_ids"]) == ("FEVER_CONFIRMED", "warning", [again["event_id"]])
    assert alert["dedup_key"] == f"FEVER_CONFIRMED|{first['person_ref']}|venue-1"
    assert tick(app, app.wiring.rechecks.expire, time.time() + 3600) == 0  # the recheck was settled


def test_fever_recheck_below_threshold_is_allowed_and_raises_nothing(
        hcs_app: Harness) -> None:
    app, sink, _ = hcs_app
    first = f.scan(temperature_c=37.5)
    again = f.scan(at=f.T0 + timedelta(minutes=3), person_ref=first["person_ref"], temperature_c=36.9)
    run(app, first, again)
    assert [d["decision"] for d in sink.of(topics.DECISIONS)] == ["RECHECK", "ALLOW"]
    assert sink.of(topics.ALERTS) == []
    assert tick(app, app.wiring.rechecks.expire, time.time() + 3600) == 0


def test_a_scan_after_the_recheck_window_is_a_new_first_reading(
        hcs_app: Harness) -> None:
    app, sink, _ = hcs_app
    first = f.scan(temperature_c=37.5)
    later = f.scan(at=f.T0 + timedelta(minutes=15, seconds=1), person_ref=first["person_ref"], temperature_c=37.5)
    run(app, first, later)
    assert [d["decision"] for d in sink.of(topics.DECISIONS)] == ["RECHECK", "RECHECK"]


def test_no_recheck_in_the_window_raises_fever_unresolved_from_the_timer(
        hcs_app: Harness) -> None:
    app, sink, changelog = hcs_app
    first = f.scan(temperature_c=38.4)
    run(app, first)
    now = time.time()
    assert tick(app, app.wiring.rechecks.expire, now + 14 * 60) == 0  # window still open
    assert tick(app, app.wiring.rechecks.expire, now + 15 * 60 + 1) == 1
    (alert,) = sink.of(topics.ALERTS)
    assert (alert["kind"], alert["status"], alert["checkpoint_id"]) == ("FEVER_UNRESOLVED", "firing", "cp-1")
    assert alert["event_ids"] == [first["event_id"]]
    assert tick(app, app.wiring.rechecks.expire, now + 3600) == 0  # fired once
    # The recheck was deleted with a tombstone on its partition.
    rechecks = [call.args for call in changelog.call_args_list if call.args[1].startswith("f|")]
    assert [(partition, value is None) for partition, _, value in rechecks] == [(0, False), (0, True)]


def test_repeats_of_a_person_alert_within_the_dedup_window_are_counted_not_emitted(
        hcs_app: Harness) -> None:
    app, sink, _ = hcs_app
    ref = f.scan()["person_ref"]
    scans = [f.scan(at=f.T0 + timedelta(minutes=m), person_ref=ref, health_code={"color": "yellow"})
             for m in (0, 10, 30, 31)]
    run(app, *scans)
    assert len(sink.of(topics.DECISIONS)) == 4
    alerts = sink.of(topics.ALERTS)
    assert [(a["count"], a["event_ids"]) for a in alerts] == [
        (1, [scans[0]["event_id"]]),
        (3, [scans[1]["event_id"], scans[2]["event_id"], scans[3]["event_id"]]),
    ]
    assert alerts[0]["alert_id"] != alerts[1]["alert_id"]
    assert sample(app, "hcs_alerts_total", district="330106", kind="KEY_PERSON_DETECTED", severity="warning") == 2


def test_each_bad_record_is_dead_lettered_and_the_next_scan_is_still_judged(
        hcs_app: Harness) -> None:
    app, sink, _ = hcs_app
    good = f.scan()
    too_large = f.encode(f.scan(padding="x" * 70_000))
    good_in_batch = f.scan()
    batch = f.batch([good_in_batch, f.scan(mask="yes")])
    run(app, b"\x00not json", too_large, f.encode({"schema": "hcs.scan.v9"}),
        f.encode(f.scan(event_time="2022-05-10 08:00")), batch, good)
    dead = sink.of(topics.DLQ)
    assert [d["reason"] for d in dead] == ["NOT_JSON", "TOO_LARGE", "UNSUPPORTED_SCHEMA", "SCHEMA_INVALID",
                                           "SCHEMA_INVALID"]
    assert dead[3]["detail"].startswith("event_time: must be an RFC 3339 timestamp with an explicit offset")
    assert dead[4]["detail"] == "scans[1].mask: Expected `bool | null`, got `str`"
    assert all(d["_key"] == "venue-1" and d["source_topic"] == "hcs.scans.v1" for d in dead)
    assert [d["event_id"] for d in sink.of(topics.DECISIONS)] == [good_in_batch["event_id"], good["event_id"]]
    assert sample(app, "hcs_dead_letters_total", topic="hcs.scans.v1", reason="SCHEMA_INVALID") == 2


def test_dedup_ids_are_forgotten_after_the_horizon(hcs_app: Harness) -> None:
    app, sink, changelog = hcs_app
    scan = f.scan()
    run(app, scan)
    horizon = app.hcs_settings.dedup_horizon_hours * 3600

    def sweep(now: float) -> int:
        return app.wiring.intake.sweep(now, app.wiring.owned())

    assert tick(app, sweep, time.time() + horizon - 60) == 0
    assert tick(app, sweep, time.time() + horizon + 1) >= 1
    marks = [call.args for call in changelog.call_args_list if call.args[1] == "e|" + scan["event_id"]]
    assert [(partition, value is None) for partition, _, value in marks] == [(0, False), (0, True)]  # made, swept
    run(app, scan)  # past the horizon the id is new again
    assert len(sink.of(topics.DECISIONS)) == 2


def test_a_gateway_batch_yields_what_its_scans_yield_one_record_each() -> None:
    """The scans of a batch share lookups and write-backs (policy, windows, checkpoint status,
    minute, metrics); the outcome must be scan-for-scan what single records give."""
    ref = f.scan()["person_ref"]
    fever = f.scan()["person_ref"]
    earlier = f.scan(health_code={"color": "red"}, person_ref=ref)
    scans = [
        f.scan(),
        f.scan(health_code={"color": "red"}, person_ref=ref, at=f.T0 + timedelta(minutes=1)),  # alert folded
        earlier,  # a redelivery of an earlier record
        f.scan(checkpoint_id="cp-2", mask=None, temperature_c=None),
        f.scan(temperature_c=38.0, person_ref=fever, at=f.T0 + timedelta(minutes=2)),  # a recheck opens
        f.scan(temperature_c=38.2, person_ref=fever, at=f.T0 + timedelta(minutes=4)),  # ... and is confirmed
        f.scan(at=f.T0 + timedelta(minutes=11), mask=False),  # the next compliance window and minute
        f.scan(at=f.T0 - timedelta(minutes=3), venue_type="hospital"),  # an earlier window, other params
    ]
    scans.insert(3, dict(scans[0]))  # a repeat inside the batch
    results = []
    for as_batch in (True, False):
        app, sink, _ = make_app()
        run(app, earlier)
        if as_batch:
            run(app, f.batch(scans))
        else:
            run(app, *scans)
        now = time.time() + 3600
        for job in (app.wiring.rechecks.expire, app.wiring.windows.close, app.wiring.minutes.close):
            tick(app, job, now)
        exposition = [line for line in app.metrics.exposition().decode().splitlines()
                      if line.startswith("hcs_") and "processing_seconds" not in line
                      and not line.startswith("hcs_event_lag_seconds_sum")]  # wall-clock times
        for decision in sink.of(topics.DECISIONS):
            del decision["decided_at"]  # the wall clock of each run
        state = {k: v for k, v in app.wiring.state.data.items() if not k.startswith("m|")}
        results.append((dict(sink.sent), state, sorted(app.wiring.seen.data), exposition,
                        cast(RecordingPartials, app.wiring.partials).partials))
    batched, single = results
    assert len(batched[0][topics.DECISIONS.name]) == 8  # 11 scans, a repeat and two redeliveries
    assert {a["kind"] for a in batched[0][topics.ALERTS.name]} >= {"KEY_PERSON_DETECTED", "FEVER_CONFIRMED",
                                                                   "THREE_100_VIOLATION"}
    assert batched == single
