"""Decoding of device-facing records: bytes in, typed events or :class:`Rejected` out.

Every way a record can fail (not JSON, wrong shape, unknown schema, too large) ends here as
data with a DeadLetter reason and a detail naming the field, never as an exception in an agent.
JSON decoding and validation are done in one pass by msgspec (``streams/contract/wire.py``); the JSON
Schemas of ``schemas/`` are the published form of the same shapes.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from datetime import date
from functools import cache
from typing import Any, TypeVar

import msgspec
import orjson

from streams.contract import wire
from streams.contract.models import (
    AlertAction,
    CaseReport,
    EntryCount,
    FindingEvent,
    Itinerary,
    Nat,
    Observation,
    Plan,
    Rejected,
    ScanEvent,
    Vaccination,
)
from streams.contract.pseudonyms import PERSON_REF_FORM, holds_resident_id, is_pseudonym, is_resident_id

MAX_RECORD_BYTES = 64 * 1024  # a scan, an entry count: docs/interface.md's TOO_LARGE limit
# A gateway batch holds up to 1,000 scans, which cannot fit in 64 KiB: the limit applies to each
# scan in it, and the batch record itself may use Kafka's default maximum message size.
MAX_BATCH_RECORD_BYTES = 1024 * 1024
SCAN_SCHEMA = "hcs.scan.v1"
BATCH_SCHEMA = "hcs.scan-batch.v1"
ENTRIES_SCHEMA = "hcs.entries.v1"

T = TypeVar("T")
MAX_FUTURE_S = 3600.0  # an event time further ahead of the read time is a broken device clock

_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_QUOTED = re.compile(r"\s*'.*'", re.S)  # msgspec quotes the offending value: never echoed
_FRIENDLY = {
    "Expected `datetime` with a timezone component":
        "must be an RFC 3339 timestamp with an explicit offset, e.g. 2022-05-10T08:00:00+08:00",
    "Invalid RFC3339 encoded datetime":
        "must be an RFC 3339 timestamp with an explicit offset, e.g. 2022-05-10T08:00:00+08:00",
    "Invalid enum value": "is not one of the allowed values",
}
_SCHEMAS = f"one of {SCAN_SCHEMA}, {BATCH_SCHEMA}"
_ID_FIELDS = ("checkpoint_id", "venue_id")


def _field_error(exc: msgspec.ValidationError, where: str = "") -> tuple[str, str]:
    """(path, message) of a msgspec error, the path as ``health_code.color`` behind ``where``.

    The message names what was wrong, never the value that was there (it may be a name or an ID
    number sent by mistake).
    """
    match = _AT.match(str(exc))
    message = match.group("message") if match else str(exc)
    path = (match.group("path") or "") if match else ""
    friendly = _FRIENDLY.get(message)
    if friendly is None:
        friendly = _QUOTED.sub("", message) if "regex" not in message else message
        friendly = _FRIENDLY.get(friendly, friendly)
    return where + (path.lstrip(".") or "(record)"), friendly


def _is_schema_error(exc: msgspec.ValidationError) -> bool:
    text = str(exc)
    return text.endswith("- at `$.schema`") or text == "Object missing required field `schema`"


def _not_json(raw: bytes | memoryview) -> str | None:
    """Why ``raw`` is not well-formed UTF-8 JSON, or None if it is.

    msgspec validates while it parses, so a record cut off after a bad value fails as a schema
    error first; a record that is not JSON at all is NOT_JSON whatever else is wrong with it.
    """
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "recursion" in str(exc):
            return None  # well-formed as far as read: too deep, which is a shape error
        return f"not UTF-8 JSON: {exc.msg}"
    return None


def _not_utf8(raw: bytes) -> str | None:
    """Why ``raw`` is not UTF-8, or None. msgspec checks the text it decodes, but skips the keys
    of fields it ignores unchecked (found by the fuzz drill); most records are ASCII, checked in C."""
    if raw.isascii():
        return None
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 JSON: invalid UTF-8 at byte {exc.start}"
    return None


def _too_large(size: int, limit: int, what: str, payload: bytes) -> Rejected:
    return Rejected("TOO_LARGE", f"{what} is {size} bytes, over the {limit} byte limit", payload)


def _too_deep(payload: bytes, where: str = "") -> Rejected:
    return Rejected("SCHEMA_INVALID", f"{where or '(record)'}: nested too deeply", payload)


def _invalid(exc: msgspec.ValidationError, payload: bytes, where: str = "") -> Rejected:
    path, message = _field_error(exc, where)
    return Rejected("SCHEMA_INVALID", f"{path}: {message}", payload, redact=path.removeprefix(where))


def _shape_error(exc: msgspec.ValidationError, payload: bytes, where: str, schemas: str) -> Rejected:
    """A record that decoded as JSON but not as its schema: the schema tag, or a field."""
    why = _not_json(payload)
    if why is not None:
        return Rejected("NOT_JSON", f"{where}{why}" if where else why, payload)
    if _is_schema_error(exc):
        return Rejected("UNSUPPORTED_SCHEMA", f"{where}schema: is not {schemas}", payload, redact="schema")
    return _invalid(exc, payload, where)


def _identity_error(scan: wire.Scan, where: str) -> tuple[str, str] | None:
    """(detail, field) if the scan's pseudonym is not one, or it or its ids hold a resident ID
    number (on every scan: the place ids are searched once each, see :func:`_holds_id`)."""
    ref = scan.person_ref
    if not is_pseudonym(ref):
        return f"{where}person_ref: must be {PERSON_REF_FORM}", "person_ref"
    if len(ref) == 18 and is_resident_id(ref):
        return f"{where}person_ref: is a resident ID number; must be {PERSON_REF_FORM}", "person_ref"
    if len(scan.event_id) == 18 and is_resident_id(scan.event_id):  # a whole id only: hex digests may hold digits
        return f"{where}event_id: is a resident ID number", "event_id"
    # Looked up in the cache here first: two calls a scan saved (measured, ~5% of a scan's CPU).
    if _PLACES.get(scan.checkpoint_id, True) and _holds_id(scan.checkpoint_id):
        return f"{where}checkpoint_id: holds a resident ID number", "checkpoint_id"
    if _PLACES.get(scan.venue_id, True) and _holds_id(scan.venue_id):
        return f"{where}venue_id: holds a resident ID number", "venue_id"
    return None


_PLACES: dict[str, bool] = {}  # checkpoint and venue ids repeat: each is searched once (0.6 us a search)


def _holds_id(place: str) -> bool:
    found = _PLACES.get(place)
    if found is None:
        if len(_PLACES) >= 200_000:
            _PLACES.clear()
        found = _PLACES[place] = holds_resident_id(place)
    return found


_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},:]', re.S)


def _split_batch(raw: bytes) -> tuple[bytes, list[bytes]] | None:
    """A gateway batch too deeply nested for the decoder, split without recursion: the record
    with its ``scans`` replaced by ``[0]`` (to decode the rest) and each scan's bytes, so that
    only the scan nested too deeply is refused. None if no ``scans`` array is found."""
    depth, key, previous = 0, None, None
    start = item = -1
    items: list[bytes] = []
    for token in _TOKEN.finditer(raw):
        text = token.group()
        if text in (b"{", b"["):
            depth += 1
            if depth == 2 and text == b"[" and key == b'"scans"' and start < 0:
                start = item = token.end()
        elif text in (b"}", b"]"):
            if depth == 2 and start >= 0 and text == b"]":
                if raw[item:token.start()].strip():
                    items.append(raw[item:token.start()])
                return raw[:start - 1] + b"[0]" + raw[token.end():], items
            depth -= 1
        elif text == b"," and depth == 2 and start >= 0:
            items.append(raw[item:token.start()])
            item = token.end()
        elif text == b":" and depth == 1:
            key = previous
        previous = text
    return None


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


def _accept(scan: wire.Scan, payload: bytes | memoryview, where: str, now: float | None) -> ScanEvent | Rejected:
    """The event of a decoded scan, or why it is refused although it decoded."""
    refused = _identity_error(scan, where)
    if refused is not None:  # the payload (a view into a batch) is copied only when refused
        return Rejected("SCHEMA_INVALID", refused[0], bytes(payload), redact=refused[1])
    event = _event(scan)
    if now is not None and event.event_time > now + MAX_FUTURE_S:
        return Rejected("SCHEMA_INVALID", f"{where}event_time: more than {MAX_FUTURE_S:.0f} s after it was read "
                        "(a device clock ahead)", bytes(payload), redact="event_time")
    return event


def decode_scans(raw: bytes | None, key: bytes | None = None, now: float | None = None) -> list[ScanEvent | Rejected]:
    """Decode one ``hcs.scans.v1`` record: a single scan, or a gateway batch of scans.

    Returns one item per scan, in order; a bad scan of a batch is rejected on its own (its
    detail starts with ``scans[i]``) and never spoils the others. A batch holds the scans of
    one venue (the record key, else its first scan's): a scan of another venue is rejected,
    since its state lives in another partition. With ``now`` (when the record was read), an
    event time more than :data:`MAX_FUTURE_S` ahead of it is refused: one scan from a device
    whose clock is years ahead would otherwise move its partition's stream time past every
    window. Any input, however hostile, gives items, never an exception.
    """
    raw = raw or b""
    whole, items = _record(raw, now)
    if whole is not None:
        return whole  # a single scan, or the whole record refused
    out: list[ScanEvent | Rejected] = []
    venue = key.decode("utf-8", "replace") if key else None
    decode = wire.SCAN_RECORD.decode
    for i, item in enumerate(items):
        # Decoded from the batch's buffer in place; a scan is copied out only to be dead-lettered.
        if len(item) > MAX_RECORD_BYTES:
            out.append(_too_large(len(item), MAX_RECORD_BYTES, f"scans[{i}]", bytes(item)))
            continue
        try:
            scan = decode(item)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
            out.append(_item_error(i, item, exc))
            continue
        if not isinstance(scan, wire.Scan):
            out.append(Rejected("UNSUPPORTED_SCHEMA", f"scans[{i}].schema: is not {SCAN_SCHEMA} (a batch inside a "
                                "batch)", bytes(item)))
            continue
        venue = venue or scan.venue_id  # no key: the batch is its first scan's venue's
        if scan.venue_id != venue:
            out.append(Rejected("SCHEMA_INVALID", f"scans[{i}].venue_id: is not the batch's venue (its record key)",
                                bytes(item)))
            continue
        out.append(_accept(scan, item, f"scans[{i}].", now))
    return out


def _record(raw: bytes, now: float | None) -> tuple[list[ScanEvent | Rejected] | None, Sequence[bytes | msgspec.Raw]]:
    """A record of ``hcs.scans.v1`` decoded as a whole: its one scan, or why it is refused as a
    whole; or (None and) a gateway batch's scans, still encoded."""
    if len(raw) > MAX_BATCH_RECORD_BYTES:
        return _whole(_too_large(len(raw), MAX_BATCH_RECORD_BYTES, "record", raw))
    if (bad_text := _not_utf8(raw)) is not None:
        return _whole(Rejected("NOT_JSON", bad_text, raw))
    try:
        record = wire.SCAN_RECORD.decode(raw)
    except msgspec.ValidationError as exc:
        return _whole(_shape_error(exc, raw, "", _SCHEMAS))
    except msgspec.DecodeError as exc:
        return _whole(Rejected("NOT_JSON", f"not UTF-8 JSON: {exc}", raw))
    except RecursionError:
        # A batch of which one scan is nested too deeply must not cost the others their decisions.
        split = _split_batch(raw)
        try:
            envelope = wire.SCAN_RECORD.decode(split[0]) if split is not None else None
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            envelope = None
        if split is None or not isinstance(envelope, wire.ScanBatch) or len(split[1]) > wire.MAX_BATCH_SCANS:
            return _whole(_too_deep(raw))
        return None, split[1]
    if isinstance(record, wire.Scan):
        if len(raw) > MAX_RECORD_BYTES:
            return _whole(_too_large(len(raw), MAX_RECORD_BYTES, "record", raw))
        return _whole(_accept(record, raw, "", now))
    return None, record.scans


def _whole(item: ScanEvent | Rejected) -> tuple[list[ScanEvent | Rejected], Sequence[bytes]]:
    """A record decoded as a whole: its one scan, or why it is refused."""
    return [item], ()


def _item_error(i: int, item: bytes | msgspec.Raw, exc: Exception) -> Rejected:
    """Why scan ``i`` of a gateway batch did not decode."""
    if isinstance(exc, msgspec.ValidationError):
        return _shape_error(exc, bytes(item), f"scans[{i}].", SCAN_SCHEMA)
    if isinstance(exc, msgspec.DecodeError):  # only a batch split by _split_batch may hold one
        return Rejected("NOT_JSON", f"scans[{i}].not UTF-8 JSON: {exc}", bytes(item))
    return _too_deep(bytes(item), f"scans[{i}]")


def _decode_record(decoder: msgspec.json.Decoder[Any], raw: bytes, schema: str, kind: type[T]) -> T | Rejected:
    """A single record of ``kind`` through ``decoder``, or why it is refused: too large, not
    JSON, not the schema (the field at fault), another schema, nested too deeply."""
    record = _decode_any(decoder, raw, schema)
    if isinstance(record, (Rejected, kind)):
        return record
    return Rejected("UNSUPPORTED_SCHEMA", f"schema: is not {schema}", raw)


def _decode_any(decoder: msgspec.json.Decoder[Any], raw: bytes, schema: str) -> Any:
    if len(raw) > MAX_RECORD_BYTES:
        return _too_large(len(raw), MAX_RECORD_BYTES, "record", raw)
    if (bad_text := _not_utf8(raw)) is not None:
        return Rejected("NOT_JSON", bad_text, raw)
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        return _shape_error(exc, raw, "", schema)
    except msgspec.DecodeError as exc:
        return Rejected("NOT_JSON", f"not UTF-8 JSON: {exc}", raw)
    except RecursionError:
        return _too_deep(raw)


def _ahead(field: str, at: float, now: float | None, raw: bytes, clock: str = "a clock") -> Rejected | None:
    """The refusal of a record whose ``field`` (``at``, epoch seconds) is more than
    :data:`MAX_FUTURE_S` after ``now``, when it was read; None if it is not (or ``now`` is None).
    A scan's own check stays inline: it is on the hot path."""
    if now is not None and at > now + MAX_FUTURE_S:
        return Rejected("SCHEMA_INVALID", f"{field}: more than {MAX_FUTURE_S:.0f} s after it was read ({clock} ahead)",
                        raw)
    return None


def _id_in(record: Any, names: Sequence[str], raw: bytes) -> Rejected | None:
    """The refusal of a record one of whose id fields ``names`` (in that order) holds a resident
    ID number, that field to be redacted; None if none does (or the field is null)."""
    for name in names:
        value = getattr(record, name)
        if value is not None and _holds_id(value):
            return Rejected("SCHEMA_INVALID", f"{name}: holds a resident ID number", raw, redact=name)
    return None


def _not_a_pseudonym(ref: str, raw: bytes) -> Rejected | None:
    """The refusal of a record whose ``person_ref`` is not a pseudonym (or is an ID number)."""
    if not is_pseudonym(ref) or (len(ref) == 18 and is_resident_id(ref)):
        return Rejected("SCHEMA_INVALID", f"person_ref: must be {PERSON_REF_FORM}", raw, redact="person_ref")
    return None


def decode_entries(raw: bytes | None, now: float | None = None) -> EntryCount | Rejected:
    """Decode one ``hcs.entries.v1`` record (``now``: as for :func:`decode_scans`)."""
    raw = raw or b""
    record = _decode_record(wire.ENTRIES, raw, ENTRIES_SCHEMA, wire.EntryCountRecord)
    if isinstance(record, Rejected):
        return record
    if (refused := _id_in(record, _ID_FIELDS, raw)) is not None:
        return refused
    start, end = record.window_start.timestamp(), record.window_end.timestamp()
    if end < start:
        return Rejected("SCHEMA_INVALID", "window_end: is before window_start", raw)
    if (ahead := _ahead("window_start", start, now, raw, "a device clock")) is not None:
        return ahead
    return EntryCount(record.event_id, record.checkpoint_id, record.venue_id, record.venue_type,
                      record.district, start, end, record.entries)


MANAGEMENT_SCHEMA = "hcs.management.v1"
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def decode_plan(key: bytes | None, raw: bytes | None) -> tuple[str, Plan | None] | Rejected:
    """Decode one record of the key-personnel register: ``(person_ref, plan)``, the plan None
    when management ends (a tombstone, or ``status: released``), or why it is refused."""
    if not key:
        return Rejected("SCHEMA_INVALID", "key: must be the record's person_ref", raw or b"")
    try:
        ref = key.decode()
    except UnicodeDecodeError:
        return Rejected("SCHEMA_INVALID", "key: is not UTF-8", raw or b"")
    if not is_pseudonym(ref):
        return Rejected("SCHEMA_INVALID", f"key: must be {PERSON_REF_FORM}", raw or b"")
    if raw is None:
        return ref, None  # a tombstone: management ended
    record = _decode_record(wire.MANAGEMENT, raw, MANAGEMENT_SCHEMA, wire.ManagementRecord)
    if isinstance(record, Rejected):
        return record
    if (refused := _not_a_pseudonym(record.person_ref, raw)) is not None:
        return refused
    if record.person_ref != ref:
        return Rejected("SCHEMA_INVALID", "person_ref: is not the record's key", raw)
    kinds = [phase.kind for phase in record.phases]
    if "centralized_isolation" in kinds and record.isolation_point_id is None:
        return Rejected("SCHEMA_INVALID", "isolation_point_id: is required with a centralized_isolation phase", raw)
    if "centralized_isolation" not in kinds and record.isolation_point_id is not None:
        return Rejected("SCHEMA_INVALID", "isolation_point_id: must be null without a centralized_isolation phase",
                        raw)
    if (refused := _id_in(record, ("plan_id", "isolation_point_id"), raw)) is not None:
        return refused
    if record.status == "released":
        return ref, None
    intern = sys.intern
    phases = _phases(tuple(kinds), tuple(p.days for p in record.phases))
    point = None if record.isolation_point_id is None else intern(record.isolation_point_id)
    return ref, Plan(record.plan_id, intern(record.district), intern(record.plan),
                     record.start_date.toordinal() - _EPOCH_ORDINAL, phases, point)


@cache
def _phases(kinds: tuple[str, ...], days: tuple[int, ...]) -> tuple[tuple[str, int], ...]:
    """One tuple for every plan of the same shape (a million plans share a handful)."""
    return tuple(zip(kinds, days, strict=True))


OBSERVATION_SCHEMA = "hcs.observation.v1"


def decode_observation(raw: bytes | None, now: float | None = None) -> Observation | Rejected:
    """Decode one ``hcs.observation.v1`` record (``now``: as for :func:`decode_scans`)."""
    raw = raw or b""
    record = _decode_record(wire.OBSERVATION, raw, OBSERVATION_SCHEMA, wire.ObservationRecord)
    if isinstance(record, Rejected):
        return record
    ref = record.person_ref
    if (refused := _not_a_pseudonym(ref, raw) or _id_in(record, ("event_id", "isolation_point_id"), raw)) is not None:
        return refused
    if record.kind == "temperature" and record.temperature_c is None:
        return Rejected("SCHEMA_INVALID", "temperature_c: is required for a temperature observation", raw)
    observed_at = record.observed_at.timestamp()
    if (ahead := _ahead("observed_at", observed_at, now, raw, "a device clock")) is not None:
        return ahead
    return Observation(record.event_id, record.isolation_point_id, record.district, ref, record.kind,
                       observed_at, record.temperature_c, record.nat_result)


FINDING_EVENT_SCHEMA = "hcs.finding-event.v1"
AUTO_PREFIX = "auto|"
# Cases the worker starts from a positive NAT it read (nat|<event_id>), published on hcs.cases.v1
# as reported cases are, so that every worker traces them.
NAT_CASE_PREFIX = "nat|"  # automatic findings' ids (auto|<venue_id>|<date>): the worker's alone to open


def decode_finding_event(raw: bytes | None, now: float | None = None) -> FindingEvent | Rejected:
    """Decode one ``hcs.finding-event.v1`` record (``now``: as for :func:`decode_scans`). Whether
    its action is allowed is the finding's state's to say (:func:`streams.rules.findings.apply`)."""
    raw = raw or b""
    record = _decode_record(wire.FINDING_EVENT, raw, FINDING_EVENT_SCHEMA, wire.FindingEventRecord)
    if isinstance(record, Rejected):
        return record
    if (refused := _id_in(record, ("event_id", "finding_id", "venue_id", "checkpoint_id", "note"), raw)) is not None:
        return refused
    at = record.at.timestamp()
    if (ahead := _ahead("at", at, now, raw)) is not None:
        return ahead
    deadline = None if record.deadline is None else record.deadline.timestamp()
    if record.action == "open":
        if record.problem is None:
            return Rejected("SCHEMA_INVALID", "problem: is required to open a finding", raw)
        if record.finding_id.startswith(AUTO_PREFIX):
            return Rejected("SCHEMA_INVALID", f"finding_id: {AUTO_PREFIX} is kept for automatic findings", raw)
        if deadline is not None and deadline <= at:
            return Rejected("SCHEMA_INVALID", "deadline: is not after at", raw)
    elif deadline is not None:
        return Rejected("SCHEMA_INVALID", f"deadline: only open sets a deadline, not {record.action}", raw)
    return FindingEvent(record.finding_id, record.venue_id, record.venue_type, record.district, record.action, at,
                 record.problem, deadline, record.event_id)


CASE_SCHEMA = "hcs.case.v1"


def decode_case(raw: bytes | None, now: float | None = None) -> CaseReport | Rejected:
    """Decode one ``hcs.case.v1`` record (``now``: as for :func:`decode_scans`)."""
    raw = raw or b""
    record = _decode_record(wire.CASE, raw, CASE_SCHEMA, wire.CaseRecord)
    if isinstance(record, Rejected):
        return record
    refused = _not_a_pseudonym(record.person_ref, raw) or _id_in(record, ("event_id", "case_id"), raw)
    if refused is not None:
        return refused
    sampled, reported = record.sampled_at.timestamp(), record.reported_at.timestamp()
    onset = None if record.onset_at is None else record.onset_at.timestamp()
    if reported < sampled:
        return Rejected("SCHEMA_INVALID", "reported_at: is before sampled_at", raw)
    if (ahead := _ahead("reported_at", reported, now, raw)) is not None:
        return ahead
    return CaseReport(record.case_id, record.person_ref, record.district, record.classification, sampled, onset,
                      reported, record.event_id)


ALERT_ACTION_SCHEMA = "hcs.alert-action.v1"


def decode_alert_action(raw: bytes | None, now: float | None = None) -> AlertAction | Rejected:
    """Decode one ``hcs.alert-action.v1`` record (``now``: as for :func:`decode_scans`). Whether
    the action is allowed is its incident's state's to say (:func:`streams.rules.incidents.act`)."""
    raw = raw or b""
    record = _decode_record(wire.ALERT_ACTION, raw, ALERT_ACTION_SCHEMA, wire.AlertActionRecord)
    if isinstance(record, Rejected):
        return record
    if (refused := _id_in(record, ("event_id",), raw)) is not None:
        return refused
    at = record.at.timestamp()
    if (ahead := _ahead("at", at, now, raw)) is not None:
        return ahead
    return AlertAction(record.event_id, record.dedup_key, record.action, at, record.level)
