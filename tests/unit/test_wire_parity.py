"""The msgspec decoder accepts exactly what schemas/scan.v1.json and entries.v1.json accept,
over a corpus of valid and broken records, apart from the documented timestamp differences."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest

from streams.contract.codec import decode_entries, decode_finding_event, decode_scans
from streams.contract.models import EntryCount, FindingEvent, Rejected, ScanEvent
from streams.contract.validation import load_schema
from tests import factories as f
from tests.factories import valid_id_number

DELETE = object()
BASE = f.scan()
MUTATIONS: list[tuple[str, Any]] = [
    *[(field, DELETE) for field in ("schema", "event_id", "event_time", "checkpoint_id", "venue_id", "venue_type",
                                   "district", "person_ref", "health_code")],
    *[(field, DELETE) for field in ("temperature_c", "mask", "nat", "vaccination", "itinerary")],
    ("schema", "hcs.scan.v2"), ("event_id", ""), ("event_id", "x" * 128), ("event_id", "x" * 129), ("event_id", 7),
    ("event_time", "2022-05-10T08:00:00"), ("event_time", "2022-05-10"), ("event_time", 1652140800),
    ("event_time", "2022-05-10T08:00:00.5Z"), ("event_time", "2022-05-10T08:00:00-05:30"),
    ("venue_type", "casino"), ("venue_type", "other"), ("district", "33010"), ("district", "3301066"),
    ("district", "abcdef"), ("person_ref", "p" * 15), ("person_ref", "p" * 16), ("person_ref", "p" * 129),
    ("person_ref", "a" * 15), ("person_ref", "a" * 16), ("person_ref", "a" * 128), ("person_ref", "a" * 129),
    ("person_ref", "ABCDEF0123456789"), ("person_ref", "王小明" * 6), ("person_ref", "Zhang San Feng Lao"),
    ("person_ref", "11010519491231002X"), ("person_ref", "abcdef0123456789 "),
    ("health_code.color", "blue"), ("health_code.color", DELETE), ("health_code.popup", "yes"),
    ("health_code.popup", DELETE), ("health_code", "green"),
    ("temperature_c", 29.9), ("temperature_c", 30), ("temperature_c", 45), ("temperature_c", 45.1),
    ("temperature_c", None), ("temperature_c", "37"),
    ("mask", None), ("mask", "yes"), ("mask", 1), ("mask", False),
    ("nat", None), ("nat.result", DELETE), ("nat.result", "unknown"), ("nat.sampled_at", "2022-05-09T20:00:00"),
    ("nat.sampled_at", DELETE), ("nat.reported_at", None), ("nat.reported_at", DELETE), ("nat.reported_at", "soon"),
    ("vaccination", None), ("vaccination.doses", -1), ("vaccination.doses", 10), ("vaccination.doses", 11),
    ("vaccination.doses", 2.5), ("vaccination.doses", DELETE), ("vaccination.exemption", "no"),
    ("vaccination.exemption", DELETE), ("vaccination.last_dose_at", None),
    ("itinerary", None), ("itinerary.as_of", DELETE), ("itinerary.cities", "Hangzhou"), ("itinerary.cities", []),
    ("itinerary.cities", [BASE["itinerary"]["cities"][0]] * 200),
    ("itinerary.cities", [BASE["itinerary"]["cities"][0]] * 201), ("itinerary.cities.0.starred", DELETE),
    ("itinerary.cities.0.starred", "yes"), ("itinerary.cities.0.name", ""),
    ("itinerary.cities.0.last_seen_at", "2022-05-01T00:00:00"), ("unknown_extra_field", {"ignored": True}),
]


def mutate(value: dict[str, Any], path: str, new: Any) -> dict[str, Any]:
    out = copy.deepcopy(value)
    *parents, last = path.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if new is DELETE:
        if isinstance(node, dict):
            node.pop(last, None)
    elif isinstance(node, list):
        node[int(last)] = new
    else:
        node[last] = new
    return out


ID_NUMBER = valid_id_number("330106", "19900101", "124")  # all digits: fits the hex charset
SCAN_SCHEMA = jsonschema.Draft7Validator(load_schema("scan.v1"))


@pytest.mark.parametrize(("path", "new"), MUTATIONS, ids=[f"{p}={'<deleted>' if v is DELETE else v!r}"[:60]
                                                          for p, v in MUTATIONS])
def test_the_decoder_and_the_published_schema_agree(path: str, new: Any) -> None:
    value = mutate(BASE, path, new)
    schema_accepts = SCAN_SCHEMA.is_valid(value)
    (item,) = decode_scans(f.encode(value))
    assert isinstance(item, ScanEvent) == schema_accepts, item


@pytest.mark.parametrize(("text", "schema_accepts", "decoder_accepts"), [
    ("2022-05-10 08:00:00+08:00", False, True),  # RFC 3339 allows a space for T; the pattern does not
    ("2022-05-10T08:00:00+0800", False, True),  # unambiguous, not RFC 3339: accepted, not published
    ("2022-13-10T08:00:00+08:00", True, False),  # matches the pattern, is no date
])
def test_the_documented_timestamp_differences(text: str, schema_accepts: bool, decoder_accepts: bool) -> None:
    value = mutate(BASE, "event_time", text)
    (item,) = decode_scans(f.encode(value))
    assert (SCAN_SCHEMA.is_valid(value), isinstance(item, ScanEvent)) == (schema_accepts, decoder_accepts)


def test_an_id_number_that_fits_the_hex_charset_is_refused_by_the_decoder_only() -> None:
    """JSON Schema cannot compute the GB 11643 check digit: 18 digits that pass it match the
    pattern but are a resident ID number, which the decoder refuses (documented in the schema)."""
    value = mutate(BASE, "person_ref", ID_NUMBER)
    (item,) = decode_scans(f.encode(value))
    assert SCAN_SCHEMA.is_valid(value) and isinstance(item, Rejected) and item.redact == "person_ref"


ENTRY = {"schema": "hcs.entries.v1", "event_id": "c-1", "checkpoint_id": "cp", "venue_id": "v", "venue_type": "mall",
         "district": "330106", "window_start": "2022-05-10T08:00:00+08:00",
         "window_end": "2022-05-10T08:01:00+08:00", "entries": 3}
ENTRIES_SCHEMA = jsonschema.Draft7Validator(load_schema("entries.v1"))


@pytest.mark.parametrize(("path", "new"), [
    ("entries", -1), ("entries", 0), ("entries", 2.5), ("entries", 1_000_000), ("entries", 1_000_001),
    ("entries", DELETE), ("district", "1"),
    ("window_start", "2022-05-10T08:00:00"), ("venue_type", "zoo"), ("schema", "hcs.entries.v2"), ("extra", 1)])
def test_entry_counts_agree_with_their_schema(path: str, new: Any) -> None:
    value = mutate(ENTRY, path, new)
    assert isinstance(decode_entries(f.encode(value)), EntryCount) == ENTRIES_SCHEMA.is_valid(value)


FINDING = {"schema": "hcs.finding-event.v1", "event_id": "fe-1", "finding_id": "F-1", "venue_id": "v",
           "venue_type": "mall", "district": "330106", "action": "open", "at": "2022-05-10T08:00:00+08:00",
           "problem": "MASK", "checkpoint_id": "cp", "deadline": "2022-05-11T08:00:00+08:00", "note": "gate 2"}
FINDING_SCHEMA = jsonschema.Draft7Validator(load_schema("finding-event.v1"))


@pytest.mark.parametrize(("path", "new"), [
    *[(field, DELETE) for field in FINDING],
    ("action", "close"), ("action", "rectify"), ("problem", "NOISE"), ("problem", None), ("finding_id", ""),
    ("finding_id", "x" * 129), ("venue_type", "zoo"), ("district", "33010"), ("at", "2022-05-10T08:00:00"),
    ("at", "2022-05-10"), ("deadline", None), ("deadline", "tomorrow"), ("checkpoint_id", None),
    ("checkpoint_id", ""), ("note", None), ("note", "x" * 500), ("note", "x" * 501), ("note", 5),
    ("schema", "hcs.finding-event.v2"), ("extra", 1)])
def test_finding_events_agree_with_their_schema(path: str, new: Any) -> None:
    """What the schema alone can say (the decoder also checks ids, the deadline's order and that
    only an open sets one: those records are schema-valid and refused, not tested here)."""
    value = mutate(FINDING, path, new)
    if value.get("action") != "open":
        value.pop("deadline", None)  # only an open may set one (the decoder's rule, not the schema's)
    assert isinstance(decode_finding_event(f.encode(value)), FindingEvent) == FINDING_SCHEMA.is_valid(value), value
