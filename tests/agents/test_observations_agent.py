"""Isolation-point observations through the worker's drain: bad records dead-lettered with the
field at fault, redeliveries dropped, a fever raised at once."""

from __future__ import annotations

import base64
from typing import Any

from streams.contract import topics
from tests import factories as f
from tests.agents.conftest import drive, make_app


def observation(event_id: str, **fields: Any) -> dict[str, Any]:
    return {"schema": "hcs.observation.v1", "event_id": event_id, "isolation_point_id": "iso-1",
            "district": "330105", "person_ref": f.pseudonym(1), "kind": "temperature",
            "observed_at": f.ts(f.T0), "temperature_c": 36.6, **fields}


def test_bad_observations_are_dead_lettered_redeliveries_dropped_and_a_fever_raised() -> None:
    app, sink, _ = make_app()
    feverish = observation("obs-2", temperature_c=38.0)
    drive(app, "observe_isolation_points", [
        (b"iso-1", f.encode(observation("obs-1")), 0, None),
        (b"iso-1", f.encode(observation("obs-1")), 0, None),  # redelivered
        (b"iso-1", f.encode(observation("obs-3", kind="temperature", temperature_c=None)), 0, None),
        (b"iso-1", f.encode(observation("obs-4", person_ref="11010519491231002X")), 0, None),
        (b"iso-1", b"{", 0, None),
        (b"iso-1", f.encode(feverish), 0, None),
    ])
    dead = sink.of(topics.DLQ)
    assert [(d["reason"], d["detail"].split(":")[0]) for d in dead] == [
        ("SCHEMA_INVALID", "temperature_c"), ("SCHEMA_INVALID", "person_ref"), ("NOT_JSON", "not UTF-8 JSON")]
    kept = base64.b64decode(dead[1]["payload_b64"]).decode()
    assert "11010519491231002X" not in kept and "[redacted]" in kept  # the ID number is not kept
    (alert,) = sink.of(topics.ALERTS)
    assert (alert["kind"], alert["person_ref"], alert["venue_id"], alert["details"]) == (
        "RESIDENT_FEVER", f.pseudonym(1), "iso-1", {"temperature_c": 38.0})
    assert app.metrics.registry.get_sample_value("hcs_duplicates_total", {"topic": "hcs.observations.v1"}) == 1
