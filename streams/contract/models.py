"""Typed, already-validated values that flow through hcs (timestamps as epoch seconds).

They hold what the rules read, not every field of the record: the decoder (``streams/contract/wire.py``)
validates the whole record, and converting a timestamp the rules never read cost ~0.45 µs
(``reported_at``, ``last_dose_at``, ``as_of``, the ``last_seen_at`` of cities without a star).

msgspec Structs rather than frozen dataclasses: one of each is built per scan, and a frozen
dataclass's ``__init__`` sets every field through ``object.__setattr__`` (1.8 µs for a scan
against 0.1 to 0.4 µs, measured).
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import msgspec


class Nat(msgspec.Struct, frozen=True, gc=False):
    result: str  # negative | positive | pending
    sampled_at: float


class Vaccination(msgspec.Struct, frozen=True, gc=False):
    doses: int
    exemption: bool


class Itinerary(msgspec.Struct, frozen=True, gc=False):
    starred_seen_at: tuple[float, ...]  # when each starred city (a risk area) was last visited


class ScanEvent(msgspec.Struct, frozen=True, gc=False):
    """One scan (``hcs.scan.v1``). ``event_time`` is epoch seconds; ``event_time_at`` the same
    instant with the offset it was sent with, for records that echo it (the encoder renders a
    datetime as RFC 3339 in C, for a fraction of what ``isoformat()`` costs)."""

    event_id: str
    event_time: float
    event_time_at: datetime
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


class EntryCount(msgspec.Struct, frozen=True, gc=False):
    """People a counter saw pass a checkpoint in ``[window_start, window_end)`` (``hcs.entries.v1``)."""

    event_id: str
    checkpoint_id: str
    venue_id: str
    venue_type: str
    district: str
    window_start: float
    window_end: float
    entries: int


class Observation(msgspec.Struct, frozen=True, gc=False):
    """One check of a resident by a centralized isolation point's staff (``hcs.observation.v1``)."""

    event_id: str
    isolation_point_id: str
    district: str
    person_ref: str
    kind: str  # temperature | nat_sample
    observed_at: float
    temperature_c: float | None
    nat_result: str | None


class Rejected(msgspec.Struct, frozen=True, gc=False):
    """A record (or one scan of a gateway batch) that cannot be accepted.

    ``payload`` is what should be kept in the dead letter: the record as received, or for one
    scan of a batch that scan alone (re-encoded), so it can be replayed once fixed.
    """

    reason: str  # NOT_JSON | SCHEMA_INVALID | UNSUPPORTED_SCHEMA | TOO_LARGE | INVALID_TRANSITION
    detail: str
    payload: bytes
    # The field (a path such as ``health_code.color``) whose value was refused: the dead letter
    # carries the payload with that value redacted, since it may be a name or an ID number.
    redact: str = ""


class Plan(msgspec.Struct, frozen=True, gc=False):
    """One managed person's plan, as the register holds it (10⁶ of them may be held: no cycles,
    so not tracked by the garbage collector; the strings many plans share are interned)."""

    plan_id: str
    district: str  # the managing district
    plan: str  # a label: 14+7+7, 7+3, 2+14
    start_day: int  # Asia/Shanghai day number (days since the epoch) of start_date: day 1
    phases: tuple[tuple[str, int], ...]  # (kind, days), in order
    isolation_point_id: str | None  # the venue_id of its centralized isolation point

    @property
    def end_day(self) -> int:
        """The day number of the plan's last day."""
        return self.start_day + sum(days for _, days in self.phases) - 1


class FindingEvent(NamedTuple):
    """A finding event (``hcs.finding-event.v1``), decoded."""

    finding_id: str
    venue_id: str
    venue_type: str
    district: str
    action: str
    at: float
    problem: str | None = None  # for open
    deadline: float | None = None  # for open; default at + rectify_deadline_hours
    event_id: str = ""  # its idempotency key (the intake's, not the rules')


class CaseReport(NamedTuple):
    """A case to trace (``hcs.case.v1``, or a positive NAT the worker read), decoded."""

    case_id: str
    person_ref: str
    district: str
    classification: str
    sampled_at: float
    onset_at: float | None
    reported_at: float
    event_id: str = ""


class AlertAction(NamedTuple):
    """An on-call action (``hcs.alert-action.v1``), decoded."""

    event_id: str
    dedup_key: str
    action: str  # ack | resolve
    at: float
    level: int  # of who acted
