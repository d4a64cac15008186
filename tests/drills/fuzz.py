"""A seeded generator of hostile scan records, and an oracle independent of the worker's decoder.

Each case is a record for ``hcs.scans.v1``: a valid scan, a scan with one field deleted or
replaced by a hostile value, bytes cut or corrupted, or a gateway batch mixing such scans. The
oracle says what the worker must do with each scan: decide it (valid per the published JSON
Schema, checked by the reference validator, and none of the rules a schema cannot state: no
resident ID number, no event time far ahead) or dead-letter it. Encoding uses the standard
library's JSON, which writes integers of any size; the oracle parses with it too, refusing the
non-JSON constants (NaN, Infinity) it would otherwise accept.
"""

from __future__ import annotations

import copy
import json
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jsonschema

from streams.contract.pseudonyms import holds_resident_id, is_resident_id
from streams.contract.validation import load_schema
from tests import factories as f

MAX_RECORD = 64 * 1024
ID_NUMBER = f.valid_id_number("330106", "19900101", "124")
PERSONAL = [ID_NUMBER, "11010519491231002X", "王小明王小明王小明王小明王小明王小明", "Zhang San Feng Lao Shi"]
HOSTILE: list[Any] = [*PERSONAL, f"gate-{ID_NUMBER}",
    None, "", " ", "x" * 200, 0, -1, 10**30, -(10**30), 1e308, 2.5, True, False, [], {}, [1, 2], {"a": 1},
    "330106", "red", "blue", "2022-05-10T08:00:00", "2099-01-01T00:00:00+08:00", "not a time",
    "\u0000\u202e\ud7ff", "a" * 16, "f" * 129, 45.1, 29.9, 37.3, 11, "school",
]
PATHS = ["schema", "event_id", "event_time", "checkpoint_id", "venue_id", "venue_type", "district", "person_ref",
         "health_code", "health_code.color", "health_code.popup", "temperature_c", "mask", "nat", "nat.result",
         "nat.sampled_at", "vaccination", "vaccination.doses", "vaccination.exemption", "itinerary",
         "itinerary.cities", "itinerary.cities.0.starred", "itinerary.cities.0.last_seen_at", "extra"]
_OFFSET = re.compile(r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$")
SCAN_SCHEMA = jsonschema.Draft7Validator(load_schema("scan.v1"))


@dataclass(frozen=True)
class Case:
    key: bytes
    value: bytes
    decided: tuple[str, ...]  # event ids the worker must decide (before dedup across cases)
    dead: int  # dead letters the worker must write for this record


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def _parse(raw: bytes) -> Any:
    """The value of ``raw`` by the standard library's parser, or raise ValueError."""
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(str(exc)) from None


def _timestamps(scan: dict[str, Any]) -> Iterator[str]:
    yield scan["event_time"]
    for name, field in (("nat", "sampled_at"), ("nat", "reported_at"), ("vaccination", "last_dose_at"),
                        ("itinerary", "as_of")):
        if isinstance(scan.get(name), dict) and scan[name].get(field) is not None:
            yield scan[name][field]
    if isinstance(scan.get("itinerary"), dict):
        yield from (city["last_seen_at"] for city in scan["itinerary"]["cities"])


def _real_instants(scan: dict[str, Any]) -> bool:
    """The schema's pattern takes month 13 or hour 29; an instant must exist (RFC 3339)."""
    try:
        for text in _timestamps(scan):
            datetime.fromisoformat(text)
            if not _OFFSET.search(text):
                return False  # Python takes +08:90; RFC 3339 offsets have minutes 00-59
    except ValueError:
        return False
    return True


def accepted(scan: Any, venue: str | None = None) -> bool:
    """Must the worker decide this scan (a parsed value)?"""
    if not isinstance(scan, dict) or not SCAN_SCHEMA.is_valid(scan) or not _real_instants(scan):
        return False
    if is_resident_id(scan["person_ref"]) or is_resident_id(scan["event_id"]) or any(
            holds_resident_id(scan[k]) for k in ("checkpoint_id", "venue_id")):
        return False
    if datetime.fromisoformat(scan["event_time"]).timestamp() > time.time() + 3600:
        return False  # an hour ahead of the clock reading it
    return venue is None or scan["venue_id"] == venue


def _mutate(rng: random.Random, scan: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(scan)
    *parents, last = rng.choice(PATHS).split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.get(part) if isinstance(node, dict) else None
        if node is None:
            return out
    if isinstance(node, list):
        node[int(last)] = rng.choice(HOSTILE)
    elif isinstance(node, dict):
        if rng.random() < 0.3:
            node.pop(last, None)
        else:
            node[last] = rng.choice(HOSTILE) if rng.random() < 0.9 else _deep(rng.choice((50, 3000)))
    return out


def _deep(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def _encode(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        return b"[" * 5000 + b"]" * 5000


def _scan(rng: random.Random, n: int, venue: str) -> dict[str, Any]:
    kind = rng.choice(["green", "red", "fever", "nomask"])
    extra: dict[str, Any] = {"health_code": {"color": "red"}} if kind == "red" else {}
    if kind == "fever":
        extra["temperature_c"] = 38.0
    if kind == "nomask":
        extra["mask"] = False
    value = f.scan(venue_id=venue, checkpoint_id=f"{venue}-gate", person_ref=f.pseudonym(rng.randrange(500)), **extra)
    value["event_id"] = f"fuzz-{n}"
    return value


def cases(count: int, seed: int) -> Iterator[Case]:
    """``count`` records, reproducible from ``seed``."""
    rng = random.Random(seed)
    for n in range(count):
        venue = f"venue-{rng.randrange(40)}"
        key = venue.encode()
        roll = rng.random()
        if roll < 0.85:  # one scan per record, as most devices send
            scan = _scan(rng, n, venue)
            if roll < 0.35:
                value = _encode(scan)
            elif roll < 0.7:
                value = _encode(_mutate(rng, scan))
            else:
                raw = _encode(scan)
                cut = rng.randrange(len(raw))
                # Never a space, nor a 'T' or ':' written in: the decoder takes two timestamp
                # spellings (a space for T, +0800) that the published pattern does not list.
                flip = rng.choice(b'{}[]",9az\x00\xff\x80\\')
                value = raw[:cut] if rng.random() < 0.5 else raw[:cut] + bytes([flip]) + raw[cut + 1:]
            yield _single(key, value)
        else:  # a gateway batch of good and bad scans
            scans = [_scan(rng, n * 1000 + i, venue) for i in range(rng.randrange(1, 30))]
            scans = [s if rng.random() < 0.6 else _mutate(rng, s) for s in scans]
            value = _encode(f.batch(scans))
            if roll > 0.99:
                value = value[: len(value) // 2]  # a batch cut off: one NOT_JSON for the record
            yield _batch(key, value, venue)


def _single(key: bytes, value: bytes) -> Case:
    try:
        parsed = _parse(value)
    except ValueError:
        return Case(key, value, (), 1)
    if len(value) > MAX_RECORD or not accepted(parsed):
        return Case(key, value, (), 1)
    return Case(key, value, (parsed["event_id"],), 0)


def _batch(key: bytes, value: bytes, venue: str) -> Case:
    try:
        parsed = _parse(value)
    except ValueError:
        return Case(key, value, (), 1)
    decided = []
    dead = 0
    for scan in parsed["scans"]:
        if len(_encode(scan)) <= MAX_RECORD and accepted(scan, venue):
            decided.append(scan["event_id"])
        else:
            dead += 1
    return Case(key, value, tuple(decided), dead)
