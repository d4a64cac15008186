"""The key-personnel register (``hcs.management.v1``): every managed person's plan, on every worker.

A replica (:mod:`streams.kafka.replica`; the worker feeds it from a replicated view) of the
compacted register topic, keyed by
``person_ref``: loaded before the worker judges its first scan, followed afterwards. A record
replaces the person's plan (an extension, a correction: the later record on the topic wins);
``status: released`` and a tombstone end management at once. An invalid record leaves the
previous plan in place and is dead-lettered (:meth:`Register.take_refused`).

Alongside the plans it counts them by shape (managing district, start day, phases), so the
``hcs_managed_persons`` gauge is a sum over a few thousand shapes, not a walk of 10⁶ plans.
"""

from __future__ import annotations

from collections import Counter

from streams.contract.codec import decode_plan
from streams.contract.models import Plan, Rejected
from streams.kafka.replica import InvalidRecord, Replica, Where
from streams.rules.management import centralized_day, position

Shape = tuple[str, int, tuple[tuple[str, int], ...]]  # (district, start_day, phases)


def _decode(key: bytes | None, value: bytes | None) -> tuple[str, Plan | None]:
    decoded = decode_plan(key, value)
    if isinstance(decoded, Rejected):
        raise InvalidRecord(decoded.detail, decoded)
    return decoded


class Register:
    """person_ref -> Plan for every person under management, and their counts by shape."""

    def __init__(self, topic: str = "") -> None:
        self.replica: Replica[str, Plan] = Replica("management", topic, _decode, on_change=self._changed,
                                                   on_invalid=self._refused)
        self.plans: dict[str, Plan] = self.replica.data
        self.shapes: Counter[Shape] = Counter()
        self.by_point: dict[str, set[str]] = {}  # isolation point -> persons whose plan names it
        self._refused_records: list[tuple[Rejected, Where]] = []

    def get(self, person_ref: str) -> Plan | None:
        return self.plans.get(person_ref)

    def apply(self, key: bytes | None, value: bytes | None, partition: int = 0, offset: int = -1) -> None:
        """One register record (what the view does with each; also for tests without a broker)."""
        self.replica.apply(key, value, partition, offset)

    def residents(self, point: str, day: int) -> list[tuple[str, Plan, int]]:
        """(person_ref, plan, day of the centralized phase) of the residents of isolation point
        ``point`` on local day ``day``: in centralized isolation there that day."""
        found = []
        for ref in sorted(self.by_point.get(point, ())):
            plan = self.plans.get(ref)
            if plan is not None and (phase_day := centralized_day(plan, day)) is not None:
                found.append((ref, plan, phase_day))
        return found

    def _changed(self, person_ref: str, old: Plan | None, new: Plan | None) -> None:
        if old is not None and old.isolation_point_id is not None:
            refs = self.by_point.get(old.isolation_point_id)
            if refs is not None:
                refs.discard(person_ref)
                if not refs:
                    del self.by_point[old.isolation_point_id]
        if new is not None and new.isolation_point_id is not None:
            self.by_point.setdefault(new.isolation_point_id, set()).add(person_ref)
        if old is not None:
            shape = (old.district, old.start_day, old.phases)
            left = self.shapes[shape] - 1
            if left:
                self.shapes[shape] = left
            else:
                del self.shapes[shape]
        if new is not None:
            self.shapes[(new.district, new.start_day, new.phases)] += 1

    def _refused(self, where: Where, value: bytes | None, error: ValueError) -> None:
        refused = getattr(error, "refused", None)
        rejected = refused if isinstance(refused, Rejected) else Rejected("SCHEMA_INVALID", str(error), value or b"")
        self._refused_records.append((rejected, where))

    def take_refused(self) -> list[tuple[Rejected, Where]]:
        """The records refused since the last call (to be dead-lettered)."""
        taken, self._refused_records = self._refused_records, []
        return taken

    def managed_on(self, day: int) -> Counter[tuple[str, str]]:
        """Persons under management on local day ``day``, by (managing district, phase)."""
        counts: Counter[tuple[str, str]] = Counter()
        for (district, start, phases), n in self.shapes.items():
            at = position(start, phases, day)
            if at is not None:
                counts[(district, at[0])] += n
        return counts
