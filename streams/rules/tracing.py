"""Source tracing, pure: visits, a case's infectious window and who was with the case.

Every scan that got a decision is a visit ``[event_time, event_time + dwell]`` (the dwell per
venue type is policy). A case's trace reads the case's visits with event_time in
``[start - lookback, reported_at]`` (start: onset, else the positive sample), and finds, at each
of those venues, every other person whose visits overlap one of the case's by at least the
minimum overlap (one pair of visits suffices; exactly the minimum counts). A contact's total at
a venue is the time both were there: the overlap of the union of the case's visits there with
the union of the contact's (so overlapping visits of one person are not counted twice). Times
are epoch seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from streams.rules import codes as c
from streams.rules.management import Restriction

DAY_S = 86_400.0

Span = tuple[float, float]  # [start, end] of a visit, epoch seconds


class Visit(NamedTuple):
    """One visit: a person at a venue over ``[start, end]`` (whole epoch seconds), made by a scan."""

    venue_id: str
    start: int
    event_id: str
    person_ref: str
    end: int


def visit_span(event_time: float, dwell_minutes: float | None) -> Span | None:
    """The visit a decided scan stands for; None where the venue type makes no visit."""
    if dwell_minutes is None:
        return None
    return event_time, event_time + dwell_minutes * 60.0


def trace_window(sampled_at: float, onset_at: float | None, reported_at: float, lookback_days: float) -> Span:
    """The event times of the case's visits a trace reads: from the infectious period's start
    (``lookback_days`` before onset, else before the positive sample) to the report."""
    start = onset_at if onset_at is not None else sampled_at
    return start - lookback_days * DAY_S, reported_at


def in_window(event_time: float, window: Span) -> bool:
    return window[0] <= event_time <= window[1]


def overlap_s(a: Span, b: Span) -> float:
    """Seconds two visits share (0 when they do not meet)."""
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def union(spans: Iterable[Span]) -> list[Span]:
    """The spans merged where they meet, in order."""
    merged: list[list[float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


@dataclass(frozen=True, slots=True)
class Contact:
    """One contact of a case at one venue."""

    first_overlap_at: float  # when both were first there together
    overlap_s: float  # the total time both were there (see the module)
    last_overlap_end: float  # when they were last there together (the flag counts from here)


def contact_at_venue(case: Iterable[Span], other: Iterable[Span], min_overlap_s: float) -> Contact | None:
    """Whether a person whose visits at a venue are ``other`` is a contact of a case whose visits
    there are ``case``: some pair of visits overlaps by at least ``min_overlap_s``."""
    case_spans, other_spans = list(case), list(other)
    if not any(overlap_s(a, b) >= min_overlap_s for a in case_spans for b in other_spans):
        return None
    shared = [(max(a[0], b[0]), min(a[1], b[1])) for a in union(case_spans) for b in union(other_spans)
              if min(a[1], b[1]) > max(a[0], b[0])]
    return Contact(first_overlap_at=min(start for start, _ in shared),
                   overlap_s=sum(end - start for start, end in shared),
                   last_overlap_end=max(end for _, end in shared))


def contacts_at_venue(case: list[Span], others: Iterable[tuple[str, Span]], case_person: str,
                      min_overlap_s: float) -> dict[str, Contact]:
    """Every contact among the visits ``others`` (person, span) at one venue, the case excepted."""
    by_person: dict[str, list[Span]] = {}
    for person, span in others:
        if person != case_person:
            by_person.setdefault(person, []).append(span)
    found = {}
    for person, spans in by_person.items():
        contact = contact_at_venue(case, spans, min_overlap_s)
        if contact is not None:
            found[person] = contact
    return found


def flagged_until(last_overlap_end: float, flag_days: float) -> float:
    """Until when a contact's scans are flagged (``TRACED_CONTACT``)."""
    return last_overlap_end + flag_days * DAY_S


def expired(event_time: float, now: float, retention_days: float) -> bool:
    """Whether a visit of ``event_time`` is past its retention at ``now`` (kept no longer)."""
    return event_time < now - retention_days * DAY_S


class ContactFlag(NamedTuple):
    """What every worker knows of a traced contact (from the exposures written for them)."""

    since: float  # the first overlap with a case
    until: float  # the last overlap's end plus contact_flag_days
    case_ids: tuple[str, ...]
    last_exposure_at: float  # when the last overlap ended


def flag(flag: ContactFlag | None, event_time: float, action: str) -> Restriction | None:
    """The reason a traced contact's scan at ``event_time`` gets under the venue's
    ``traced_contact_action``; None outside the flagged span (or for no contact)."""
    if flag is None or not flag.since <= event_time <= flag.until:
        return None
    return Restriction(c.TRACED_CONTACT, action == "deny", c.CONTACT_DETECTED)


def flagged(previous: ContactFlag | None, case_id: str, first_overlap_at: float, overlap_s: float,
            flag_days: float) -> ContactFlag:
    """A contact's flag with one more exposure. An exposure says when the contact first met the
    case there and for how long in all: its last overlap is taken to end ``overlap_s`` after the
    first began (exact for one overlap; for several, the flag may end early by the gaps between)."""
    last = first_overlap_at + overlap_s
    if previous is None:
        return ContactFlag(first_overlap_at, flagged_until(last, flag_days), (case_id,), last)
    cases = previous.case_ids if case_id in previous.case_ids else (*previous.case_ids, case_id)
    return ContactFlag(min(previous.since, first_overlap_at), max(previous.until, flagged_until(last, flag_days)),
                       cases, max(previous.last_exposure_at, last))
