"""The recheck flow: a first fever reading opens a recheck; a second one within the window, or
the window's end, closes it.

:func:`rules.judge.judge` decides from a scan and whether a recheck is open; this module keeps
the open ones (one per venue and person) and raises ``FEVER_UNRESOLVED`` for those whose window
ended without a second reading (by processing time, so a replayed backlog does not raise it
before its rechecks are read).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import msgspec

from streams.concepts.alerting import Alerts
from streams.concepts.base import Input, Timer
from streams.concepts.minutes import DistrictMinutes
from streams.kafka.state import PartitionedState
from streams.rules import codes as c
from streams.rules.alerts import AlertDraft, person_dedup_key
from streams.rules.compliance import StreamClock
from streams.rules.policy import Policy

RECHECK_PREFIX = "f|"  # venue|person -> open fever recheck
TICK_S = 5.0  # FEVER_UNRESOLVED fires within this long after a recheck window ends


class Recheck(msgspec.Struct, frozen=True, gc=False):
    """An open recheck."""

    opened: float  # event time of the first reading
    due: float  # processing time its window ends
    event_id: str
    checkpoint_id: str
    district: str
    venue_type: str
    policy_version: str


def recheck_key(venue_id: str, person_ref: str) -> str:
    return f"{RECHECK_PREFIX}{venue_id}|{person_ref}"


class Rechecks:
    def __init__(self, state: PartitionedState, alerts: Alerts, minutes: DistrictMinutes, clock: StreamClock,
                 policy: Policy, owned: Callable[[], set[int]]) -> None:
        self.open_ones = state.typed(RECHECK_PREFIX, Recheck)
        self.ending = self.open_ones.due_index(lambda recheck: recheck.due, monotone=True)
        self.alerts = alerts
        self.minutes = minutes
        self.clock = clock
        self.policy = policy
        self.owned = owned

    def inputs(self) -> Sequence[Input]:
        return ()  # opened and closed by the judging of scans

    def timers(self) -> Sequence[Timer]:
        return (Timer(TICK_S, self.expire),)

    def opened_at(self, key: str) -> float | None:
        """When the recheck of ``key`` opened (event time), or None if none is open."""
        recheck = self.open_ones.get(key)
        return None if recheck is None else recheck.opened

    def open(self, key: str, recheck: Recheck, partition: int) -> None:
        self.open_ones.set(key, recheck, partition)

    def close(self, key: str) -> None:
        self.open_ones.delete(key)

    def expire(self, now: float) -> int:
        """Raise FEVER_UNRESOLVED for every recheck window that ended without a second reading."""
        fired = 0
        for partition in sorted(self.owned()):
            for key in self.ending.pop_due(partition, now):
                recheck = self.open_ones.get(key)
                if recheck is not None:
                    self._unresolved(key, recheck, partition, now)
                    fired += 1
        return fired

    def _unresolved(self, key: str, rec: Recheck, partition: int, now: float) -> None:
        venue_id, person_ref = key[len(RECHECK_PREFIX):].split("|", 1)
        _, params = self.policy.params(rec.opened, rec.district, rec.venue_type)
        self.open_ones.delete(key)
        # Counted in the minute of the partition's stream time; unknown (a partition nothing
        # was read from since a restart, for its first seconds) it is the wall clock's.
        at = self.clock.now(partition, now)
        minute, _ = self.minutes.minute(partition, rec.district, now if at == -math.inf else at)
        draft = AlertDraft(c.FEVER_UNRESOLVED, c.WARNING, person_dedup_key(c.FEVER_UNRESOLVED, person_ref, venue_id),
                           rec.district, venue_id, rec.policy_version, checkpoint_id=rec.checkpoint_id,
                           person_ref=person_ref, reasons=(c.FEVER,))
        self.alerts.raise_alert(draft, rec.event_id, rec.opened, params.alert_dedup_minutes, partition, minute)
