"""Builders of valid test records (scans, batches, entry counts) with overridable fields."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from streams import times
from streams.kafka.output import partition_for

SHANGHAI = times.SHANGHAI
T0 = datetime(2022, 5, 10, 8, 0, 0, tzinfo=SHANGHAI)
_ids = itertools.count(1)


def pseudonym(n: int) -> str:
    """A person_ref as devices make it (64 lowercase hex characters), distinct per ``n``."""
    return hashlib.sha256(f"test-person-{n}".encode()).hexdigest()


def valid_id_number(region: str, birth: str, sequence: str) -> str:
    """An 18-character resident ID number of that form whose GB 11643 check character is right
    (made up for tests: a real device must never send one)."""
    body = region + birth + sequence
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


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
        "person_ref": pseudonym(n),
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


def policy_file(directory: Path, version: str, **defaults: Any) -> Path:
    """A policy file of one version, in force since 2022, that changes the packaged ``defaults``
    named (e.g. seconds-long windows for a drill)."""
    path = directory / f"policy-{version}.json"
    path.write_text(json.dumps({"schema": "hcs.policy.v1", "versions": [
        {"version": version, "valid_from": "2022-01-01T00:00:00+08:00", "defaults": defaults}]}))
    return path


FOURTEEN_SEVEN_SEVEN = (("centralized_isolation", 14), ("home_isolation", 7), ("health_monitoring", 7))


def plan(person_ref: str | None = None, start: str = "2022-05-10",
         phases: tuple[tuple[str, int], ...] = FOURTEEN_SEVEN_SEVEN, **overrides: Any) -> dict[str, Any]:
    """A key-personnel register record (hcs.management.v1): 14+7+7 from 2022-05-10 by default,
    centralized at isolation point ``iso-1``, managed by Gongshu (330105)."""
    value: dict[str, Any] = {
        "schema": "hcs.management.v1", "plan_id": "plan-1", "person_ref": person_ref or pseudonym(1),
        "district": "330105", "plan": "+".join(str(days) for _, days in phases), "start_date": start,
        "phases": [{"kind": kind, "days": days} for kind, days in phases],
        "isolation_point_id": "iso-1" if any(k == "centralized_isolation" for k, _ in phases) else None,
        "status": "active", "updated_at": "2022-05-10T07:00:00+08:00"}
    value.update(overrides)
    return value


def venues_on_partitions(prefix: str, n: int, partitions: int = 8) -> list[str]:
    """``n`` venue ids (``prefix-0``, ``prefix-1`` ...) each on another of ``partitions``
    partitions (Kafka's default partitioner): one venue's stream time is not another's."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < n:
        found.setdefault(partition_for(f"{prefix}-{i}".encode(), partitions), f"{prefix}-{i}")
        i += 1
    return list(found.values())
