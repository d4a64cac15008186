"""Decoding of device-facing records: bytes in, typed events or :class:`Rejected` out.

Every way a record can fail (not JSON, wrong shape, unknown schema, too large) ends here as
data with a DeadLetter reason and a detail naming the field, never as an exception in an agent.
JSON decoding and validation are done in one pass by msgspec (``streams/wire.py``); the JSON
Schemas of ``schemas/`` are the published form of the same shapes.
"""

from __future__ import annotations

import re

import msgspec
import orjson

from streams import wire
from streams.models import EntryCount, Itinerary, Nat, Rejected, ScanEvent, Vaccination

MAX_RECORD_BYTES = 64 * 1024  # a scan, an entry count: CONTRACT.md's TOO_LARGE limit
# A gateway batch holds up to 1,000 scans, which cannot fit in 64 KiB: the limit applies to each
# scan in it, and the batch record itself may use Kafka's default maximum message size.
MAX_BATCH_RECORD_BYTES = 1024 * 1024
SCAN_SCHEMA = "hcs.scan.v1"
BATCH_SCHEMA = "hcs.scan-batch.v1"
ENTRIES_SCHEMA = "hcs.entries.v1"

_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_FRIENDLY = {
    "Expected `datetime` with a timezone component":
        "must be an RFC 3339 timestamp with an explicit offset, e.g. 2022-05-10T08:00:00+08:00",
    "Invalid RFC3339 encoded datetime":
        "must be an RFC 3339 timestamp with an explicit offset, e.g. 2022-05-10T08:00:00+08:00",
}


def _field_error(exc: msgspec.ValidationError, where: str = "") -> tuple[str, str]:
    """(path, message) of a msgspec error, the path as ``health_code.color`` behind ``where``."""
    match = _AT.match(str(exc))
    message = match.group("message") if match else str(exc)
    path = (match.group("path") or "") if match else ""
    return where + (path.lstrip(".") or "(record)"), _FRIENDLY.get(message, message)


def _schema_of(raw: bytes) -> object:
    """The ``schema`` field of a record that failed to decode (for the UNSUPPORTED_SCHEMA detail)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value.get("schema") if isinstance(value, dict) else None


def _is_schema_error(exc: msgspec.ValidationError) -> bool:
    text = str(exc)
    return text.endswith("- at `$.schema`") or text == "Object missing required field `schema`"


def _too_large(size: int, limit: int, what: str, payload: bytes) -> Rejected:
    return Rejected("TOO_LARGE", f"{what} is {size} bytes, over the {limit} byte limit", payload)


def _invalid(exc: msgspec.ValidationError, payload: bytes, where: str = "") -> Rejected:
    path, message = _field_error(exc, where)
    return Rejected("SCHEMA_INVALID", f"{path}: {message}", payload)


def _event(scan: wire.Scan) -> ScanEvent:
    nat = scan.nat
    vac = scan.vaccination
    iti = scan.itinerary
    return ScanEvent(
        event_id=scan.event_id,
        event_time=scan.event_time.timestamp(),
        event_time_at=scan.event_time,
        checkpoint_id=scan.checkpoint_id,
        venue_id=scan.venue_id,
        venue_type=scan.venue_type,
        district=scan.district,
        person_ref=scan.person_ref,
        color=scan.health_code.color,
        popup=scan.health_code.popup,
        temperature_c=scan.temperature_c,
        mask=scan.mask,
        nat=None if nat is None else Nat(nat.result, nat.sampled_at.timestamp()),
        vaccination=None if vac is None else Vaccination(vac.doses, vac.exemption),
        itinerary=None if iti is None else Itinerary(
            tuple([c.last_seen_at.timestamp() for c in iti.cities if c.starred])),
    )


def decode_scans(raw: bytes | None, key: bytes | None = None) -> list[ScanEvent | Rejected]:
    """Decode one ``hcs.scans.v1`` record: a single scan, or a gateway batch of scans.

    Returns one item per scan, in order; a bad scan of a batch is rejected on its own (its
    detail starts with ``scans[i]``) and never spoils the others. A batch holds the scans of
    one venue (the record key, else its first scan's): a scan of another venue is rejected,
    since its state lives in another partition.
    """
    raw = raw or b""
    if len(raw) > MAX_BATCH_RECORD_BYTES:
        return [_too_large(len(raw), MAX_BATCH_RECORD_BYTES, "record", raw)]
    try:
        record = wire.SCAN_RECORD.decode(raw)
    except msgspec.ValidationError as exc:
        if _is_schema_error(exc):
            return [Rejected("UNSUPPORTED_SCHEMA", f"schema: {_schema_of(raw)!r} is not one of "
                             f"{SCAN_SCHEMA!r}, {BATCH_SCHEMA!r}", raw)]
        return [_invalid(exc, raw)]
    except msgspec.DecodeError as exc:
        return [Rejected("NOT_JSON", f"not UTF-8 JSON: {exc}", raw)]
    if isinstance(record, wire.Scan):
        if len(raw) > MAX_RECORD_BYTES:
            return [_too_large(len(raw), MAX_RECORD_BYTES, "record", raw)]
        return [_event(record)]
    out: list[ScanEvent | Rejected] = []
    venue = key.decode("utf-8", "replace") if key else None
    for i, item in enumerate(record.scans):
        # Decoded from the batch's buffer in place; a scan is copied out only to be dead-lettered.
        if len(item) > MAX_RECORD_BYTES:
            out.append(_too_large(len(item), MAX_RECORD_BYTES, f"scans[{i}]", bytes(item)))
            continue
        try:
            scan = wire.SCAN.decode(item)
        except msgspec.ValidationError as exc:
            payload = bytes(item)
            if _is_schema_error(exc):
                out.append(Rejected("UNSUPPORTED_SCHEMA", f"scans[{i}].schema: {_schema_of(payload)!r} is not "
                                    f"{SCAN_SCHEMA!r}", payload))
            else:
                out.append(_invalid(exc, payload, f"scans[{i}]."))
            continue
        venue = venue or scan.venue_id
        if scan.venue_id != venue:
            out.append(Rejected("SCHEMA_INVALID", f"scans[{i}].venue_id: {scan.venue_id!r} is not the batch's "
                                f"venue {venue!r}", bytes(item)))
            continue
        out.append(_event(scan))
    return out


def decode_entries(raw: bytes | None) -> EntryCount | Rejected:
    """Decode one ``hcs.entries.v1`` record."""
    raw = raw or b""
    if len(raw) > MAX_RECORD_BYTES:
        return _too_large(len(raw), MAX_RECORD_BYTES, "record", raw)
    try:
        record = wire.ENTRIES.decode(raw)
    except msgspec.ValidationError as exc:
        if _is_schema_error(exc):
            return Rejected("UNSUPPORTED_SCHEMA", f"schema: {_schema_of(raw)!r} is not {ENTRIES_SCHEMA!r}", raw)
        return _invalid(exc, raw)
    except msgspec.DecodeError as exc:
        return Rejected("NOT_JSON", f"not UTF-8 JSON: {exc}", raw)
    start, end = record.window_start.timestamp(), record.window_end.timestamp()
    if end < start:
        return Rejected("SCHEMA_INVALID", "window_end: is before window_start", raw)
    return EntryCount(record.event_id, record.checkpoint_id, record.venue_id, record.venue_type,
                      record.district, start, end, record.entries)
