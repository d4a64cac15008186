"""Decoding records: one function, every failure a Rejected with a reason and the field."""

from __future__ import annotations

import orjson

from streams.contract.codec import MAX_BATCH_RECORD_BYTES, MAX_RECORD_BYTES, decode_scans
from streams.contract.models import Rejected, ScanEvent
from tests import factories as f


def test_a_single_scan_over_64_kib_is_too_large() -> None:
    big = f.encode(f.scan(note="x" * MAX_RECORD_BYTES))
    (item,) = decode_scans(big)
    assert isinstance(item, Rejected) and item.reason == "TOO_LARGE" and item.payload == big


def test_a_gateway_batch_of_1000_scans_is_accepted_although_over_64_kib() -> None:
    scans = [f.scan() for _ in range(1000)]
    raw = f.encode(f.batch(scans))
    assert MAX_RECORD_BYTES < len(raw) < MAX_BATCH_RECORD_BYTES
    items = decode_scans(raw, b"venue-1")
    assert len(items) == 1000 and all(isinstance(i, ScanEvent) for i in items)


def test_one_oversized_scan_in_a_batch_is_rejected_alone() -> None:
    huge = f.scan(note="x" * MAX_RECORD_BYTES)
    items = decode_scans(f.encode(f.batch([f.scan(), huge, f.scan()])), b"venue-1")
    assert [type(i).__name__ for i in items] == ["ScanEvent", "Rejected", "ScanEvent"]
    rejected = items[1]
    assert isinstance(rejected, Rejected) and rejected.reason == "TOO_LARGE"
    assert rejected.detail.startswith("scans[1] is") and orjson.loads(rejected.payload)["event_id"] == huge["event_id"]


def test_a_batch_record_over_1_mib_is_too_large() -> None:
    raw = f.encode(f.batch([f.scan(note="x" * 60_000) for _ in range(20)]))
    (item,) = decode_scans(raw)
    assert isinstance(item, Rejected) and item.reason == "TOO_LARGE"


def test_a_scan_of_another_venue_in_a_batch_is_rejected() -> None:
    items = decode_scans(f.encode(f.batch([f.scan(), f.scan(venue_id="elsewhere")])), b"venue-1")
    assert isinstance(items[1], Rejected) and items[1].detail.startswith("scans[1].venue_id:")
