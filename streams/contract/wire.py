"""The device-facing record shapes as msgspec Structs: JSON decoding and validation in C.

These mirror ``schemas/scan.v1.json``, ``scan-batch.v1.json`` and ``entries.v1.json``, which
stay the published contract; ``tests/unit/test_wire_parity.py`` runs both over a corpus of valid
and broken records and checks they agree. Known, intended differences: timestamps are parsed
as RFC 3339 instants, so impossible dates (month 13) are refused although they match the
schema's pattern, while two unambiguous spellings the pattern does not list are accepted (a
space instead of ``T``, which RFC 3339 allows, and ``+0800`` offsets). A timestamp without an
offset is refused, as the contract says. Unknown extra fields are ignored.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

MAX_CITIES = 200  # a 14-day travel record; bounded, as every field of untrusted input is
MAX_BATCH_SCANS = 1000
MAX_ENTRIES = 1_000_000  # people one counter saw in one interval

Timestamp = Annotated[datetime, Meta(tz=True)]
Id = Annotated[str, Meta(min_length=1, max_length=128)]
District = Annotated[str, Meta(pattern="^[0-9]{6}$")]
VenueType = Literal["school", "kindergarten", "nursing_home", "hospital", "isolation_point", "transport_hub",
                    "government", "hotel", "mall", "supermarket", "office", "other"]


class HealthCode(Struct, frozen=True, gc=False):
    color: Literal["green", "yellow", "red", "unknown"]
    popup: bool = False


class Nat(Struct, frozen=True, gc=False):
    result: Literal["negative", "positive", "pending"]
    sampled_at: Timestamp
    reported_at: Timestamp | None = None


class Vaccination(Struct, frozen=True, gc=False):
    doses: Annotated[int, Meta(ge=0, le=10)]
    last_dose_at: Timestamp | None = None
    exemption: bool = False


class City(Struct, frozen=True, gc=False):
    name: Annotated[str, Meta(min_length=1, max_length=128)]
    starred: bool
    last_seen_at: Timestamp


class Itinerary(Struct, frozen=True, gc=False):
    as_of: Timestamp
    cities: Annotated[list[City], Meta(max_length=MAX_CITIES)]


class Scan(Struct, frozen=True, gc=False, tag_field="schema", tag="hcs.scan.v1"):
    event_id: Id
    event_time: Timestamp
    checkpoint_id: Id
    venue_id: Id
    venue_type: VenueType
    district: District
    # Its form (lowercase hex) is checked by the codec (streams.contract.pseudonyms.is_pseudonym): msgspec
    # runs a pattern through Python's re, 0.4 us a scan.
    person_ref: Annotated[str, Meta(min_length=16, max_length=128)]
    health_code: HealthCode
    temperature_c: Annotated[float, Meta(ge=30, le=45)] | None = None
    mask: bool | None = None
    nat: Nat | None = None
    vaccination: Vaccination | None = None
    itinerary: Itinerary | None = None


class ScanBatch(Struct, frozen=True, gc=False, tag_field="schema", tag="hcs.scan-batch.v1"):
    gateway_id: Id
    # Each scan is decoded on its own, so that one bad scan never spoils the others.
    scans: Annotated[list[msgspec.Raw], Meta(min_length=1, max_length=MAX_BATCH_SCANS)]


class EntryCountRecord(Struct, frozen=True, gc=False, tag_field="schema", tag="hcs.entries.v1"):
    event_id: Id
    checkpoint_id: Id
    venue_id: Id
    venue_type: VenueType
    district: District
    window_start: Timestamp
    window_end: Timestamp
    entries: Annotated[int, Meta(ge=0, le=MAX_ENTRIES)]


class Phase(Struct, frozen=True, gc=False):
    kind: Literal["centralized_isolation", "home_isolation", "health_monitoring"]
    days: Annotated[int, Meta(ge=1, le=60)]


class ManagementRecord(Struct, frozen=True, gc=False, tag_field="schema", tag="hcs.management.v1"):
    plan_id: Id
    person_ref: Annotated[str, Meta(min_length=16, max_length=128)]  # its form: checked by the codec
    district: District  # the managing district
    plan: Annotated[str, Meta(min_length=1, max_length=32)]
    start_date: date  # Asia/Shanghai: day 1
    phases: Annotated[list[Phase], Meta(min_length=1, max_length=5)]
    status: Literal["active", "released"]
    updated_at: Timestamp
    # Required with a centralized_isolation phase (checked by the codec), else null.
    isolation_point_id: Id | None = None


class ObservationRecord(Struct, frozen=True, gc=False, tag_field="schema", tag="hcs.observation.v1"):
    event_id: Id
    isolation_point_id: Id
    district: District
    person_ref: Annotated[str, Meta(min_length=16, max_length=128)]  # its form: checked by the codec
    kind: Literal["temperature", "nat_sample"]
    observed_at: Timestamp
    temperature_c: Annotated[float, Meta(ge=30, le=45)] | None = None  # required for a temperature
    nat_result: Literal["negative", "positive", "pending"] | None = None


class FindingEventRecord(Struct, frozen=True, gc=False, tag_field="schema", tag="hcs.finding-event.v1"):
    event_id: Id
    finding_id: Id
    venue_id: Id
    venue_type: VenueType
    district: District
    action: Literal["open", "rectify", "verify", "reject", "cancel"]
    at: Timestamp
    # For open (the codec requires a problem there); a deadline is one of open's alone.
    problem: Literal["THREE_100", "CODE_CHECK", "TEMPERATURE", "MASK", "ISOLATION_MANAGEMENT", "NAT_SCHEDULE",
                     "OTHER"] | None = None
    checkpoint_id: Id | None = None
    deadline: Timestamp | None = None
    note: Annotated[str, Meta(max_length=500)] | None = None  # never written out: it may name people


class _NoRecord(Struct, frozen=True, tag_field="schema", tag=""):
    """Never sent: the second member that makes entry counts a tagged union (see below)."""


# Every decoder is of a tagged union, so the ``schema`` tag is required: msgspec does not require
# the tag of a lone tagged Struct, and scans of a batch without one were once accepted.
SCAN_RECORD = msgspec.json.Decoder(Scan | ScanBatch)
ENTRIES = msgspec.json.Decoder(EntryCountRecord | _NoRecord)
MANAGEMENT = msgspec.json.Decoder(ManagementRecord | _NoRecord)
OBSERVATION = msgspec.json.Decoder(ObservationRecord | _NoRecord)
FINDING_EVENT = msgspec.json.Decoder(FindingEventRecord | _NoRecord)


class CaseRecord(Struct, frozen=True, gc=False, tag_field="schema", tag="hcs.case.v1"):
    """A case reported by disease control (``hcs.cases.v1``)."""

    event_id: Id
    case_id: Id
    person_ref: Annotated[str, Meta(min_length=16, max_length=128)]  # its form: checked by the codec
    district: District
    classification: Literal["confirmed", "asymptomatic"]
    sampled_at: Timestamp
    reported_at: Timestamp
    onset_at: Timestamp | None = None


CASE = msgspec.json.Decoder(CaseRecord | _NoRecord)


class AlertActionRecord(Struct, frozen=True, gc=False, tag_field="schema", tag="hcs.alert-action.v1"):
    """An on-call action on an alert's incident (``hcs.alert-actions.v1``)."""

    event_id: Id
    dedup_key: Annotated[str, Meta(min_length=1, max_length=512)]  # kind|person|venue: longer than an id
    action: Literal["ack", "resolve"]
    at: Timestamp
    level: Annotated[int, Meta(ge=1, le=10)]


ALERT_ACTION = msgspec.json.Decoder(AlertActionRecord | _NoRecord)
