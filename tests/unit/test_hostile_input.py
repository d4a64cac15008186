"""Hostile and broken records: each is refused with the right reason, a detail that names the field
but never echoes its value, and a dead letter that is bounded in size and never carries the
refused value."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import orjson
import pytest

from streams.contract.codec import MAX_FUTURE_S, decode_entries, decode_scans
from streams.contract.deadletters import MAX_PAYLOAD_BYTES, REDACTED, dead_letter
from streams.contract.models import EntryCount, Rejected, ScanEvent
from streams.contract.pseudonyms import PERSON_REF_PATTERN, holds_resident_id, is_pseudonym, is_resident_id
from streams.contract.validation import load_schema
from tests import factories as f

ID_NUMBER = f.valid_id_number("330106", "19900101", "124")  # all digits, valid check digit
ENTRY = {"schema": "hcs.entries.v1", "event_id": "c-1", "checkpoint_id": "cp", "venue_id": "venue-1",
         "venue_type": "mall", "district": "330106", "window_start": "2022-05-10T08:00:00+08:00",
         "window_end": "2022-05-10T08:01:00+08:00", "entries": 3}


def one(raw: bytes, key: bytes | None = b"venue-1", now: float | None = None) -> ScanEvent | Rejected:
    (item,) = decode_scans(raw, key, now)
    return item


def letter(rejected: Rejected) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(dead_letter(rejected, "hcs.scans.v1", 3, 42, "2022-05-10T00:00:00Z"))
    return value


# -- resident ID numbers -------------------------------------------------------------------------

def test_the_gb_11643_check_digit_is_computed_as_published() -> None:
    assert is_resident_id("11010519491231002X")  # the standard's own example
    assert is_resident_id("11010519491231002x")
    assert not is_resident_id("110105194912310021")
    assert is_resident_id(ID_NUMBER) and not is_resident_id(ID_NUMBER[:-1] + str((int(ID_NUMBER[-1]) + 1) % 10))
    assert holds_resident_id(f"gate-{ID_NUMBER}-east") and not holds_resident_id(f"gate-9{ID_NUMBER}")


def test_a_person_ref_that_is_an_id_number_is_refused_and_its_dead_letter_hides_it() -> None:
    item = one(f.encode(f.scan(person_ref=ID_NUMBER)))
    assert isinstance(item, Rejected) and item.reason == "SCHEMA_INVALID"
    assert item.detail.startswith("person_ref: is a resident ID number") and ID_NUMBER not in item.detail
    dead = letter(item)
    payload = base64.b64decode(dead["payload_b64"])
    assert ID_NUMBER.encode() not in payload and orjson.loads(payload)["person_ref"] == REDACTED
    assert dead["payload_redacted"] == "person_ref"
    assert dead["payload_sha256"] == hashlib.sha256(payload).hexdigest()  # never a digest of the ID


@pytest.mark.parametrize("value", [
    "11010519491231002X",  # the X is no hex digit
    "王小明王小明王小明王小明王小明王小明",
    "Zhang San Feng Lao Shi",
    "ZHANGSANFENGLAOSHI",
    "0123456789ABCDEF0123",  # upper-case hex: not what the device helper writes
])
def test_names_and_other_non_pseudonyms_are_refused_without_echoing_them(value: str) -> None:
    item = one(f.encode(f.scan(person_ref=value)))
    assert isinstance(item, Rejected) and item.reason == "SCHEMA_INVALID"
    assert item.detail.startswith("person_ref: must be 16 to 128 lowercase hex characters")
    assert value not in item.detail
    assert value.encode() not in base64.b64decode(letter(item)["payload_b64"])


def test_an_event_id_that_is_an_id_number_is_refused_one_holding_digits_is_not() -> None:
    item = one(f.encode(f.scan(event_id=ID_NUMBER)))
    assert isinstance(item, Rejected) and item.detail == "event_id: is a resident ID number"
    assert ID_NUMBER.encode() not in base64.b64decode(letter(item)["payload_b64"])
    assert isinstance(one(f.encode(f.scan(event_id=f"{ID_NUMBER}0a"))), ScanEvent)  # a hex digest may hold digits


@pytest.mark.parametrize("field", ["checkpoint_id", "venue_id"])
def test_a_place_id_holding_an_id_number_is_refused(field: str) -> None:
    raw = f.encode(f.scan(**{field: f"gate-{ID_NUMBER}"}))
    item = one(raw, key=None)
    assert isinstance(item, Rejected) and item.detail == f"{field}: holds a resident ID number"
    assert ID_NUMBER.encode() not in base64.b64decode(letter(item)["payload_b64"])
    entry = decode_entries(f.encode({**ENTRY, field: ID_NUMBER}))
    assert isinstance(entry, Rejected) and entry.detail == f"{field}: holds a resident ID number"


@pytest.mark.parametrize(("field", "value"), [
    ("venue_type", "王小明"), ("health_code", {"color": ID_NUMBER}), ("district", ID_NUMBER),
    ("event_id", "x" * 129), ("schema", ID_NUMBER)])
def test_no_detail_echoes_the_value_it_refused(field: str, value: Any) -> None:
    item = one(f.encode(f.scan(**{field: value})))
    assert isinstance(item, Rejected)
    text = value["color"] if isinstance(value, dict) else value
    assert text not in item.detail and text[:10] not in item.detail, item.detail
    assert text.encode() not in base64.b64decode(letter(item)["payload_b64"])


def test_a_batch_scan_of_another_venue_is_refused_without_naming_either_venue() -> None:
    items = decode_scans(f.encode(f.batch([f.scan(), f.scan(venue_id="secret-venue")])), b"venue-1")
    assert isinstance(items[1], Rejected)
    assert items[1].detail == "scans[1].venue_id: is not the batch's venue (its record key)"


# -- shapes --------------------------------------------------------------------------------------

def test_every_prefix_of_a_valid_record_is_not_json() -> None:
    raw = f.encode(f.scan())
    for n in range(len(raw)):
        item = one(raw[:n])
        assert isinstance(item, Rejected) and item.reason == "NOT_JSON", (n, raw[:n], item)
    entries = f.encode(ENTRY)
    for n in range(len(entries)):
        counted = decode_entries(entries[:n])
        assert isinstance(counted, Rejected) and counted.reason == "NOT_JSON", (n, counted)


def test_scans_of_a_batch_are_validated_as_single_scans_are() -> None:
    no_schema = {k: v for k, v in f.scan().items() if k != "schema"}
    wrong = {**f.scan(), "schema": "hcs.scan.v2"}
    nested = f.batch([f.scan()])
    good = f.scan()
    items = decode_scans(f.encode(f.batch([no_schema, wrong, nested, good])), b"venue-1")
    assert [i.reason if isinstance(i, Rejected) else "ok" for i in items] == [
        "UNSUPPORTED_SCHEMA", "UNSUPPORTED_SCHEMA", "UNSUPPORTED_SCHEMA", "ok"]
    assert items[0].detail == "scans[0].schema: is not hcs.scan.v1"  # type: ignore[union-attr]
    single = one(f.encode(no_schema))
    assert isinstance(single, Rejected) and single.reason == "UNSUPPORTED_SCHEMA"


def test_an_entry_count_without_schema_or_with_another_one_is_refused() -> None:
    for value in ({k: v for k, v in ENTRY.items() if k != "schema"}, {**ENTRY, "schema": "hcs.scan.v1"}):
        item = decode_entries(f.encode(value))
        assert isinstance(item, Rejected) and item.reason == "UNSUPPORTED_SCHEMA", item


@pytest.mark.parametrize("entries", [b"1000001", b"1" + b"0" * 30, b"-1", b"1e3"])
def test_an_entry_count_out_of_range_is_refused(entries: bytes) -> None:
    raw = f.encode({**ENTRY, "entries": 0}).replace(b'"entries":0', b'"entries":' + entries)
    item = decode_entries(raw)
    assert isinstance(item, Rejected) and item.reason == "SCHEMA_INVALID" and item.detail.startswith("entries:")
    assert isinstance(decode_entries(f.encode({**ENTRY, "entries": 1_000_000})), EntryCount)


@pytest.mark.parametrize("depth", [100, 10_000, 100_000])
def test_deeply_nested_records_are_refused_and_never_raise(depth: int) -> None:
    deep = b"[" * depth + b"]" * depth
    single = f.encode(f.scan()).replace(b'"mask":true', b'"mask":true,"extra":' + deep)
    item = one(single)
    if depth == 100:
        assert isinstance(item, ScanEvent)  # an unknown field is ignored, however nested
    else:
        assert isinstance(item, Rejected) and item.reason == "SCHEMA_INVALID"
    batch = f.encode(f.batch([f.scan(), orjson.loads(single) if depth == 100 else {}, f.scan()]))
    batch = batch.replace(b"{}", single) if depth != 100 else batch
    items = decode_scans(batch, b"venue-1")
    assert len(items) == 3 and isinstance(items[0], ScanEvent) and isinstance(items[2], ScanEvent)
    assert isinstance(items[1], ScanEvent if depth == 100 else Rejected)
    if depth == 10_000:
        assert items[1].detail == "scans[1]: nested too deeply"  # type: ignore[union-attr]
    if depth == 100_000:
        assert items[1].reason == "TOO_LARGE"  # type: ignore[union-attr]
    entry = decode_entries(f.encode(ENTRY)[:-1] + b',"x":' + deep + b"}")
    assert isinstance(entry, (EntryCount, Rejected))


def test_a_scan_from_a_clock_far_ahead_is_refused_one_within_the_hour_accepted() -> None:
    event_time = f.T0.timestamp()
    ahead = one(f.encode(f.scan()), now=event_time - MAX_FUTURE_S - 1)
    assert isinstance(ahead, Rejected) and ahead.detail.startswith("event_time: more than 3600 s after it was read")
    assert isinstance(one(f.encode(f.scan()), now=event_time - MAX_FUTURE_S + 1), ScanEvent)


# -- sizes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "reason"), [
    (f.encode(f.scan(note="x" * 2_000_000)), "TOO_LARGE"),
    (b"\x00not json" * 100_000, "NOT_JSON"),
    (f.encode(f.batch([f.scan() for _ in range(1001)])), "SCHEMA_INVALID"),
])
def test_a_dead_letter_of_a_huge_record_is_bounded_and_says_what_was_cut(raw: bytes, reason: str) -> None:
    item = one(raw)
    assert isinstance(item, Rejected) and item.reason == reason
    encoded = dead_letter(item, "hcs.scans.v1", 0, 1, "2022-05-10T00:00:00Z")
    assert len(encoded) < 100 * 1024  # far under any topic's message limit
    dead = orjson.loads(encoded)
    assert dead["payload_size"] == len(raw) and dead["payload_truncated"] is True
    assert base64.b64decode(dead["payload_b64"]) == raw[:MAX_PAYLOAD_BYTES]
    assert dead["payload_sha256"] == hashlib.sha256(raw).hexdigest()


def test_a_small_dead_letter_keeps_its_whole_payload() -> None:
    raw = b"{not json"
    dead = letter(one(raw))  # type: ignore[arg-type]
    assert (base64.b64decode(dead["payload_b64"]), dead["payload_truncated"], dead["payload_redacted"]) == (
        raw, False, None)



@pytest.mark.parametrize("text", ["a" * 15, "a" * 16, "0123456789abcdef", "0123456789ABCDEF", "a" * 128, "a" * 129,
                                  "abcdefabcdefabcg", "abcdefabcdefabc ", "\uff41bcdefabcdefabcd", ID_NUMBER])
def test_the_fast_pseudonym_check_is_the_published_pattern(text: str) -> None:
    assert load_schema("scan.v1")["properties"]["person_ref"]["pattern"] == PERSON_REF_PATTERN
    assert is_pseudonym(text) == bool(re.fullmatch(PERSON_REF_PATTERN.strip("^$"), text))
