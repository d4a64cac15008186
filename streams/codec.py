"""Decoding of device-facing records: bytes in, typed events or :class:`Rejected` out.

Every way a record can fail (not JSON, wrong shape, unknown schema, too large) ends here as
data with a DeadLetter reason and a detail naming the field, never as an exception in an agent.
Validation uses the JSON Schemas in ``schemas/`` compiled once with fastjsonschema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from streams.models import City, EntryCount, Itinerary, Nat, Rejected, ScanEvent, Vaccination
from streams.validation import SchemaViolation, validate

MAX_RECORD_BYTES = 64 * 1024  # a scan, an entry count: CONTRACT.md's TOO_LARGE limit
# A gateway batch holds up to 1,000 scans, which cannot fit in 64 KiB: the limit applies to each
# scan in it, and the batch record itself may use Kafka's default maximum message size.
MAX_BATCH_RECORD_BYTES = 1024 * 1024
SCAN_SCHEMA = "hcs.scan.v1"
BATCH_SCHEMA = "hcs.scan-batch.v1"
ENTRIES_SCHEMA = "hcs.entries.v1"


def parse_time(text: str, field: str) -> float:
    """RFC 3339 with an explicit offset (the schema's pattern enforced that) to epoch seconds."""
    try:
        return datetime.fromisoformat(text.upper()).timestamp()
    except ValueError as exc:
        raise SchemaViolation(f"{field}: {text!r} is not a valid timestamp ({exc})") from None


def _scan(value: dict[str, Any], where: str) -> ScanEvent:
    validate("scan.v1", value, where)
    nat_v = value.get("nat")
    nat = None
    if nat_v is not None:
        reported = nat_v.get("reported_at")
        nat = Nat(
            nat_v["result"],
            parse_time(nat_v["sampled_at"], where + "nat.sampled_at"),
            parse_time(reported, where + "nat.reported_at") if reported is not None else None,
        )
    vac_v = value.get("vaccination")
    vac = None
    if vac_v is not None:
        last = vac_v.get("last_dose_at")
        vac = Vaccination(
            vac_v["doses"],
            parse_time(last, where + "vaccination.last_dose_at") if last is not None else None,
            bool(vac_v.get("exemption", False)),
        )
    iti_v = value.get("itinerary")
    iti = None
    if iti_v is not None:
        iti = Itinerary(
            parse_time(iti_v["as_of"], where + "itinerary.as_of"),
            tuple(
                City(c["starred"], parse_time(c["last_seen_at"], f"{where}itinerary.cities.{i}.last_seen_at"))
                for i, c in enumerate(iti_v["cities"])
            ),
        )
    code = value["health_code"]
    temp = value.get("temperature_c")
    return ScanEvent(
        event_id=value["event_id"],
        event_time=parse_time(value["event_time"], where + "event_time"),
        event_time_text=value["event_time"],
        checkpoint_id=value["checkpoint_id"],
        venue_id=value["venue_id"],
        venue_type=value["venue_type"],
        district=value["district"],
        person_ref=value["person_ref"],
        color=code["color"],
        popup=bool(code.get("popup", False)),
        temperature_c=float(temp) if temp is not None else None,
        mask=value.get("mask"),
        nat=nat,
        vaccination=vac,
        itinerary=iti,
    )


def _too_large(size: int, limit: int, what: str, payload: bytes) -> Rejected:
    return Rejected("TOO_LARGE", f"{what} is {size} bytes, over the {limit} byte limit", payload)


def _load_object(raw: bytes, limit: int = MAX_RECORD_BYTES) -> dict[str, Any] | Rejected:
    if len(raw) > limit:
        return _too_large(len(raw), limit, "record", raw)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejected("NOT_JSON", f"not UTF-8 JSON: {exc}", raw)
    if not isinstance(value, dict):
        return Rejected("SCHEMA_INVALID", f"(record): must be a JSON object, got {type(value).__name__}", raw)
    return value


def decode_scans(raw: bytes | None, key: bytes | None = None) -> list[ScanEvent | Rejected]:
    """Decode one ``hcs.scans.v1`` record: a single scan, or a gateway batch of scans.

    Returns one item per scan, in order; a bad scan of a batch is rejected on its own (its
    detail starts with ``scans[i]``) and never spoils the others. A batch holds the scans of
    one venue (the record key, else its first scan's): a scan of another venue is rejected,
    since its state lives in another partition.
    """
    raw = raw or b""
    value = _load_object(raw, MAX_BATCH_RECORD_BYTES)
    if isinstance(value, Rejected):
        return [value]
    schema = value.get("schema")
    try:
        if schema == SCAN_SCHEMA:
            if len(raw) > MAX_RECORD_BYTES:
                return [_too_large(len(raw), MAX_RECORD_BYTES, "record", raw)]
            return [_scan(value, "")]
        if schema == BATCH_SCHEMA:
            validate("scan-batch.v1", value)
        else:
            return [Rejected("UNSUPPORTED_SCHEMA", f"schema: {schema!r} is not one of "
                             f"{SCAN_SCHEMA!r}, {BATCH_SCHEMA!r}", raw)]
    except SchemaViolation as exc:
        return [Rejected("SCHEMA_INVALID", exc.detail, raw)]
    out: list[ScanEvent | Rejected] = []
    venue = key.decode("utf-8", "replace") if key else None
    check_sizes = len(raw) > MAX_RECORD_BYTES  # below that, no scan in it can be over the limit
    for i, item in enumerate(value["scans"]):
        where = f"scans[{i}]."
        if check_sizes:
            encoded = orjson.dumps(item)
            if len(encoded) > MAX_RECORD_BYTES:
                out.append(_too_large(len(encoded), MAX_RECORD_BYTES, f"scans[{i}]", encoded))
                continue
        if item.get("schema") != SCAN_SCHEMA:
            out.append(Rejected("UNSUPPORTED_SCHEMA", f"{where}schema: {item.get('schema')!r} is not "
                                f"{SCAN_SCHEMA!r}", orjson.dumps(item)))
            continue
        try:
            scan = _scan(item, where)
        except SchemaViolation as exc:
            out.append(Rejected("SCHEMA_INVALID", exc.detail, orjson.dumps(item)))
            continue
        venue = venue or scan.venue_id
        if scan.venue_id != venue:
            out.append(Rejected("SCHEMA_INVALID", f"{where}venue_id: {scan.venue_id!r} is not the batch's "
                                f"venue {venue!r}", orjson.dumps(item)))
            continue
        out.append(scan)
    return out


def decode_entries(raw: bytes | None) -> EntryCount | Rejected:
    """Decode one ``hcs.entries.v1`` record."""
    value = _load_object(raw or b"")
    if isinstance(value, Rejected):
        return value
    if value.get("schema") != ENTRIES_SCHEMA:
        return Rejected("UNSUPPORTED_SCHEMA", f"schema: {value.get('schema')!r} is not {ENTRIES_SCHEMA!r}",
                        raw or b"")
    try:
        validate("entries.v1", value)
        start = parse_time(value["window_start"], "window_start")
        end = parse_time(value["window_end"], "window_end")
        if end < start:
            raise SchemaViolation("window_end: is before window_start")
    except SchemaViolation as exc:
        return Rejected("SCHEMA_INVALID", exc.detail, raw or b"")
    return EntryCount(value["event_id"], value["checkpoint_id"], value["venue_id"], value["venue_type"],
                      value["district"], start, end, value["entries"])
