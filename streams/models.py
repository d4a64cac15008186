"""Typed, already-validated values that flow through hcs (timestamps as epoch seconds)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Nat:
    result: str  # negative | positive | pending
    sampled_at: float
    reported_at: float | None


@dataclass(frozen=True, slots=True)
class Vaccination:
    doses: int
    last_dose_at: float | None
    exemption: bool


@dataclass(frozen=True, slots=True)
class City:
    starred: bool
    last_seen_at: float


@dataclass(frozen=True, slots=True)
class Itinerary:
    as_of: float
    cities: tuple[City, ...]


@dataclass(frozen=True, slots=True)
class ScanEvent:
    """One scan (``hcs.scan.v1``). ``event_time`` is epoch seconds; ``event_time_text`` as sent."""

    event_id: str
    event_time: float
    event_time_text: str
    checkpoint_id: str
    venue_id: str
    venue_type: str
    district: str
    person_ref: str
    color: str
    popup: bool
    temperature_c: float | None
    mask: bool | None
    nat: Nat | None
    vaccination: Vaccination | None
    itinerary: Itinerary | None


@dataclass(frozen=True, slots=True)
class EntryCount:
    """People a counter saw pass a checkpoint in ``[window_start, window_end)`` (``hcs.entries.v1``)."""

    event_id: str
    checkpoint_id: str
    venue_id: str
    venue_type: str
    district: str
    window_start: float
    window_end: float
    entries: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record (or one scan of a gateway batch) that cannot be accepted.

    ``payload`` is what should be kept in the dead letter: the record as received, or for one
    scan of a batch that scan alone (re-encoded), so it can be replayed once fixed.
    """

    reason: str  # NOT_JSON | SCHEMA_INVALID | UNSUPPORTED_SCHEMA | TOO_LARGE
    detail: str
    payload: bytes
