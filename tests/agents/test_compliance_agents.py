"""Three 100%, silent checkpoints and district statistics through the agents in Faust's test context."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from unittest.mock import MagicMock

import orjson
from faust.types import TP

from streams.contract import topics
from streams.worker.app import HcsApp
from tests import factories as f
from tests.agents.conftest import RecordingPartials, RecordingSink, drive, make_app

Harness = tuple[HcsApp, RecordingSink, MagicMock]
T0 = f.T0  # 08:00 Shanghai: the start of a 600-second window


def entries(checkpoint_id: str, n: int, start: Any = T0, **fields: Any) -> dict[str, Any]:
    return {"schema": "hcs.entries.v1", "event_id": f"entries-{checkpoint_id}-{start.timestamp()}",
            "checkpoint_id": checkpoint_id, "venue_id": fields.get("venue_id", "venue-1"),
            "venue_type": fields.get("venue_type", "mall"), "district": fields.get("district", "330106"),
            "window_start": f.ts(start), "window_end": f.ts(start + timedelta(minutes=1)), "entries": n}


def uploaded_live(value: dict[str, Any]) -> float:
    """A device online uploads a record as it happens: its Kafka timestamp is its event time."""
    return datetime.fromisoformat(value.get("event_time") or value["window_start"]).timestamp()


def _put(app: HcsApp, drain: str, values: list[dict[str, Any]],
         uploaded: Callable[[dict[str, Any]], float] = uploaded_live) -> None:
    drive(app, drain, [(value["venue_id"].encode(), f.encode(value), 0, uploaded(value)) for value in values])


def scans(app: HcsApp, *values: dict[str, Any], uploaded: Callable[[dict[str, Any]], float] = uploaded_live) -> None:
    _put(app, "judge_scans", list(values), uploaded)


def counts(app: HcsApp, *values: dict[str, Any]) -> None:
    _put(app, "count_entries", list(values))


def close(app: HcsApp, idle: bool = False) -> None:
    """One tick of the window timer; ``idle``: as if no record came for a while (stream time = wall)."""
    now = time.time() + (60 if idle else 0)
    app.wiring.windows.close(now)
    app.wiring.checkpoints.check(now)
    app.wiring.minutes.close(now)
    app.wiring.flush()


def alerts(sink: RecordingSink, kind: str) -> list[dict[str, Any]]:
    return [a for a in sink.of(topics.ALERTS) if a["kind"] == kind]


def sample(app: HcsApp, name: str, **labels: str) -> float:
    return app.metrics.registry.get_sample_value(name, labels) or 0.0


def test_one_violation_for_a_window_with_misses_and_none_for_a_perfect_one(hcs_app: Harness) -> None:
    app, sink, _ = hcs_app
    scans(app, f.scan(checkpoint_id="cp-bad", temperature_c=None), f.scan(checkpoint_id="cp-bad"),
          f.scan(checkpoint_id="cp-good"), f.scan(checkpoint_id="cp-good", at=T0 + timedelta(seconds=599)))
    counts(app, entries("cp-bad", 3), entries("cp-good", 2))
    close(app)  # stream time is 08:09:59, the windows are open
    assert alerts(sink, "THREE_100_VIOLATION") == []
    close(app, idle=True)
    close(app, idle=True)
    (violation,) = alerts(sink, "THREE_100_VIOLATION")
    assert violation["dedup_key"] == "THREE_100_VIOLATION|cp-bad|2022-05-10T08:00:00.000+08:00"
    assert violation["details"] == {
        "window_start": "2022-05-10T08:00:00.000+08:00", "window_end": "2022-05-10T08:10:00.000+08:00",
        "scans": 2, "entries": 3, "code_misses": 1, "temperature_misses": 1, "mask_misses": 0}
    assert (violation["severity"], violation["person_ref"], violation["checkpoint_id"]) == ("warning", None, "cp-bad")
    assert sample(app, "hcs_three100_checks_total", district="330106", measure="code", outcome="ok") == 4
    assert sample(app, "hcs_three100_checks_total", district="330106", measure="code", outcome="miss") == 1
    assert sample(app, "hcs_three100_checks_total", district="330106", measure="temperature", outcome="miss") == 1
    assert sample(app, "hcs_entries_total", district="330106", venue_type="mall") == 5


def test_late_records_within_the_grace_count_and_later_ones_do_not_reopen_the_window(hcs_app: Harness) -> None:
    app, sink, _ = hcs_app
    scans(app, f.scan(checkpoint_id="cp-1", at=T0 + timedelta(seconds=590)),
          f.scan(checkpoint_id="cp-2", at=T0 + timedelta(seconds=650)),  # stream time past the window end
          f.scan(checkpoint_id="cp-1", at=T0 + timedelta(seconds=599), mask=None))  # within the 120 s grace
    close(app)
    assert alerts(sink, "THREE_100_VIOLATION") == []
    scans(app, f.scan(checkpoint_id="cp-2", at=T0 + timedelta(seconds=720)))  # end + grace: it closes
    close(app)
    (violation,) = alerts(sink, "THREE_100_VIOLATION")
    assert (violation["details"]["scans"], violation["details"]["mask_misses"]) == (2, 1)
    scans(app, f.scan(checkpoint_id="cp-1", at=T0 + timedelta(seconds=10), temperature_c=None))  # too late
    close(app)
    assert len(alerts(sink, "THREE_100_VIOLATION")) == 1
    assert sample(app, "hcs_three100_late_total", district="330106") == 1
    assert len(sink.of(topics.DECISIONS)) == 5  # still judged


def test_a_silent_checkpoint_fires_once_and_resolves_when_it_reports_again(hcs_app: Harness) -> None:
    app, sink, _ = hcs_app
    scans(app, f.scan(checkpoint_id="cp-1"), f.scan(checkpoint_id="cp-2", at=T0 + timedelta(minutes=9, seconds=59)))
    close(app)
    assert alerts(sink, "CHECKPOINT_SILENT") == []
    scans(app, f.scan(checkpoint_id="cp-2", at=T0 + timedelta(minutes=10)))  # cp-1 quiet for 10 minutes
    close(app)
    close(app)
    (firing,) = alerts(sink, "CHECKPOINT_SILENT")
    assert (firing["status"], firing["checkpoint_id"], firing["dedup_key"]) == (
        "firing", "cp-1", "CHECKPOINT_SILENT|cp-1")
    scans(app, f.scan(checkpoint_id="cp-1", at=T0 + timedelta(minutes=12)))
    resolved = alerts(sink, "CHECKPOINT_SILENT")[1]
    assert (resolved["status"], resolved["dedup_key"]) == ("resolved", firing["dedup_key"])
    assert resolved["alert_id"] != firing["alert_id"]
    close(app)
    assert len(alerts(sink, "CHECKPOINT_SILENT")) == 2


def test_a_checkpoint_uploading_its_buffer_late_is_alive_until_it_uploads_nothing_for_the_silent_time(
        hcs_app: Harness) -> None:
    app, sink, _ = hcs_app
    upload_time = (T0 + timedelta(minutes=10)).timestamp()
    scans(app, f.scan(checkpoint_id="cp-live", at=T0 + timedelta(minutes=10)))
    # cp-buffer was offline: its 08:00 scan is uploaded at 08:10, with the stream at 08:10.
    scans(app, f.scan(checkpoint_id="cp-buffer", at=T0), uploaded=lambda v: upload_time)
    close(app)
    close(app)
    assert alerts(sink, "CHECKPOINT_SILENT") == []
    scans(app, f.scan(checkpoint_id="cp-live", at=T0 + timedelta(minutes=19, seconds=59)))
    close(app)
    assert alerts(sink, "CHECKPOINT_SILENT") == []
    scans(app, f.scan(checkpoint_id="cp-live", at=T0 + timedelta(minutes=20)))  # 10 min since its upload
    close(app)
    (firing,) = alerts(sink, "CHECKPOINT_SILENT")
    assert (firing["checkpoint_id"], firing["details"]["silent_since"]) == (
        "cp-buffer", "2022-05-10T08:00:00.000+08:00")


def test_a_checkpoint_that_never_reported_is_never_silent(hcs_app: Harness) -> None:
    app, sink, _ = hcs_app
    close(app, idle=True)
    assert sink.of(topics.ALERTS) == []


def _aggregate(app: HcsApp, values: list[tuple[int, bytes]]) -> None:
    drive(app, "aggregate_district_stats", [(None, value, partition, None) for partition, value in values])


def test_district_minutes_are_merged_per_source_and_emitted_when_every_source_passed(hcs_app: Harness) -> None:
    app, sink, _ = hcs_app
    yuhang = f.scan(district="330110", venue_id="venue-9", checkpoint_id="cp-9", mask=False)
    scans(app, f.scan(), f.scan(health_code={"color": "red"}), yuhang, f.scan(at=T0 + timedelta(minutes=1)))
    close(app, idle=True)
    partials: RecordingPartials = app.wiring.partials  # type: ignore[assignment]
    sent = [orjson.loads(p) for p in partials.partials]
    # Scans count in their minute; each window's three-100% outcomes in the minute it ended (08:09).
    assert sorted((p["key"], p["at"] - T0.timestamp()) for p in sent) == [
        ("330106", 0.0), ("330106", 60.0), ("330106", 540.0), ("330110", 0.0), ("330110", 540.0)]
    (mark,) = partials.watermarks
    others = [orjson.dumps({"source": s, "through": orjson.loads(mark)["through"]}) for s in range(1, 8)]
    owner_partition = 2
    _aggregate(app, [(owner_partition, p) for p in partials.partials] + [(owner_partition, mark)]
               + [(owner_partition, w) for w in others[:-1]])
    assert sink.of(topics.DISTRICT_STATS) == []  # source 7 has not passed the minute yet
    _aggregate(app, [(owner_partition, partials.partials[0]), (owner_partition, others[-1])])
    stats = {(s["district"], s["window_start"][11:16]): s for s in sink.of(topics.DISTRICT_STATS)}
    assert sorted(stats) == [("330106", "08:00"), ("330106", "08:01"), ("330106", "08:09"),
                             ("330110", "08:00"), ("330110", "08:09")]
    first = stats[("330106", "08:00")]
    assert (first["scans"], first["decisions"], first["reasons"], first["alerts"], first["late"]) == (
        2, {"ALLOW": 1, "DENY": 1}, {"HEALTH_CODE_RED": 1}, {"KEY_PERSON_DETECTED": 1}, 2)
    assert first["window_end"] == "2022-05-10T08:01:00.000+08:00"
    yuhang = stats[("330110", "08:00")]
    assert (yuhang["scans"], yuhang["reasons"]) == (1, {"NO_MASK": 1})
    assert stats[("330106", "08:09")]["three100"] == {
        "code": {"ok": 3, "miss": 0}, "temperature": {"ok": 3, "miss": 0}, "mask": {"ok": 3, "miss": 0}}
    assert stats[("330110", "08:09")]["three100"]["mask"] == {"ok": 0, "miss": 1}
    assert stats[("330110", "08:09")]["alerts"] == {"THREE_100_VIOLATION": 1}
    # A partial re-sent after its minute was emitted changes nothing.
    _aggregate(app, [(owner_partition, partials.partials[0])] + [(owner_partition, w) for w in others])
    assert len(sink.of(topics.DISTRICT_STATS)) == 5


def test_a_partition_given_up_and_taken_back_counts_what_its_other_owner_added() -> None:
    """A district minute cached by this worker is dropped when its partition is revoked: meanwhile
    another worker may add to it, and the state recovered on its return holds the sum."""
    app, _, _ = make_app()
    other, _, _ = make_app()

    def recover(into: HcsApp, source: HcsApp) -> None:  # as table recovery replays a changelog
        into.wiring.state.data.update(source.wiring.state.data)
        into.wiring.seen.data.update(source.wiring.seen.data)

    scans(app, f.scan(event_id="a"))
    asyncio.run(app.on_partitions_revoked.send(revoked={TP(topics.SCANS.name, 0), TP(topics.ENTRIES.name, 0)}))
    assert app.wiring.clock.now(0, time.time()) == -math.inf  # its stream time starts anew too
    recover(other, app)
    scans(other, f.scan(event_id="b"), f.scan(event_id="c"))
    recover(app, other)  # partition 0 comes back
    scans(app, f.scan(event_id="d"))
    close(app, idle=True)
    partials: RecordingPartials = app.wiring.partials  # type: ignore[assignment]
    minute = [p for p in map(orjson.loads, partials.partials) if p["at"] == T0.timestamp()]
    assert [p["part"]["scans"] for p in minute] == [4]


def test_windows_recovered_into_the_table_are_closed_by_the_timer(hcs_app: Harness) -> None:
    """After a restart the keyspaces are indexed anew from what recovery put in the table."""
    app, sink, _ = hcs_app
    scans(app, f.scan(checkpoint_id="cp-r", temperature_c=None))
    close(app)
    recovered = dict(app.wiring.state.data)
    app.wiring.state.data.clear()
    app.wiring.state.reindex()
    assert list(app.wiring.windows.open_ones.items()) == []
    app.wiring.state.data.update(recovered)  # as Faust's table recovery does, behind the views
    app.on_tables_recovered()
    close(app, idle=True)
    close(app, idle=True)
    (violation,) = alerts(sink, "THREE_100_VIOLATION")
    assert violation["checkpoint_id"] == "cp-r"
