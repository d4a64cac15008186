"""The recheck flow, driven with plain values."""

from __future__ import annotations

from streams.concepts.rechecks import Recheck, recheck_key
from tests.unit.handlers.harness import Handlers

T0 = 1_652_140_800.0


def test_a_recheck_not_closed_by_its_due_time_raises_fever_unresolved_once() -> None:
    """Also right after a restart, before anything was read from the partition (its stream time
    unknown): the timer raised OverflowError there, counting the alert in the minute of -inf."""
    h = Handlers()
    key = recheck_key("venue-1", "a" * 64)
    h.rechecks.open(key, Recheck(T0, T0 + 300, "ev-1", "cp-1", "330106", "mall", "v1"), 0)
    assert h.rechecks.opened_at(key) == T0
    assert h.rechecks.expire(T0 + 299) == 0
    assert h.rechecks.expire(T0 + 300) == 1
    assert h.rechecks.expire(T0 + 301) == 0 and h.rechecks.opened_at(key) is None
    (alert,) = h.out.alerts("FEVER_UNRESOLVED")
    assert (alert["person_ref"], alert["venue_id"], alert["event_ids"]) == ("a" * 64, "venue-1", ["ev-1"])


def test_a_closed_recheck_raises_nothing() -> None:
    h = Handlers()
    key = recheck_key("venue-1", "b" * 64)
    h.rechecks.open(key, Recheck(T0, T0 + 300, "ev-1", "cp-1", "330106", "mall", "v1"), 0)
    h.rechecks.close(key)
    assert h.rechecks.expire(T0 + 600) == 0 and h.out.alerts() == []
