"""Builders of valid test records (scans, batches, entry counts) with overridable fields."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

SHANGHAI = timezone(timedelta(hours=8))
T0 = datetime(2022, 5, 10, 8, 0, 0, tzinfo=SHANGHAI)
_ids = itertools.count(1)


def ts(when: datetime) -> str:
    return when.isoformat()


def scan(**overrides: Any) -> dict[str, Any]:
    """A green, fully compliant scan at a mall in Xihu at T0 (every check passes)."""
    event_time = overrides.pop("at", T0)
    n = next(_ids)
    value: dict[str, Any] = {
        "schema": "hcs.scan.v1",
        "event_id": f"ev-{n:08d}",
        "event_time": ts(event_time),
        "checkpoint_id": "cp-1",
        "venue_id": "venue-1",
        "venue_type": "mall",
        "district": "330106",
        "person_ref": f"pseudonym-{n:016d}",
        "health_code": {"color": "green", "popup": False},
        "temperature_c": 36.5,
        "mask": True,
        "nat": {"result": "negative", "sampled_at": ts(event_time - timedelta(hours=20)), "reported_at": None},
        "vaccination": {"doses": 3, "last_dose_at": ts(event_time - timedelta(days=100)), "exemption": False},
        "itinerary": {"as_of": ts(event_time), "cities": [
            {"name": "Hangzhou", "starred": False, "last_seen_at": ts(event_time)}]},
    }
    value.update(overrides)
    return value


def batch(scans: list[dict[str, Any]], gateway_id: str = "gw-1") -> dict[str, Any]:
    return {"schema": "hcs.scan-batch.v1", "gateway_id": gateway_id, "scans": scans}


def encode(value: Any) -> bytes:
    return orjson.dumps(value)
