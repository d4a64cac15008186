"""A visit's keys in the visit store (:mod:`streams.kafka.visits`), made without the store:
the scan path makes them as it hands its visits over (no Faust here)."""

from __future__ import annotations


def time_key(seconds: float) -> bytes:
    """Whole epoch seconds as sortable bytes."""
    return b"%010d" % max(0, int(seconds))


Keys = tuple[tuple[bytes, bytes], tuple[bytes, bytes], tuple[bytes, bytes]]


def visit_keys(venue_id: str, start: int, event_id: str, person_ref: str, end: int) -> Keys:
    """A visit's three (key, value) pairs: by venue, by person, by time (see streams.kafka.visits). The
    first is also its changelog record."""
    at = f"{max(0, start):010d}"
    return ((f"v{venue_id}\0{at}\0{event_id}".encode(), f"{person_ref}\0{max(0, end):010d}".encode()),
            (f"p{person_ref}\0{at}\0{venue_id}\0{event_id}".encode(), b"%010d" % max(0, end)),
            (f"t{at}\0{venue_id}\0{event_id}".encode(), person_ref.encode()))
