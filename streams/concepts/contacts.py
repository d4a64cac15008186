"""Traced contacts, on every worker: a replica of ``hcs.exposures.v1`` folded per person.

Every exposure written by any worker reaches every worker (a replicated view, as the register
is), so a contact's next scan at any checkpoint is flagged ``TRACED_CONTACT`` within seconds of
the exposure. Each person's exposures fold into one :class:`~streams.rules.tracing.ContactFlag`:
flagged from the first overlap to ``contact_flag_days`` after the last. Flags that ended are
forgotten by a daily sweep.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from streams.concepts.base import Input, Timer
from streams.kafka.replica import InvalidRecord, Replica
from streams.rules.policy import Policy
from streams.rules.tracing import ContactFlag, flagged

SWEEP_S = 3600.0


class _Exposure(msgspec.Struct, frozen=True, gc=False):
    """What a flag needs of an ``hcs.exposure.v1`` record (the worker's own output)."""

    case_id: str
    person_ref: str
    first_overlap_at: datetime
    overlap_minutes: float


_DECODER = msgspec.json.Decoder(_Exposure)


class Contacts:
    """person_ref -> ContactFlag for every traced contact."""

    def __init__(self, policy: Policy, topic: str = "") -> None:
        self.policy = policy
        self.replica: Replica[str, ContactFlag] = Replica("exposures", topic, self._decode)
        self.flags: dict[str, ContactFlag] = self.replica.data

    def inputs(self) -> Sequence[Input]:
        return ()  # a replicated view, fed by the worker

    def timers(self) -> Sequence[Timer]:
        return (Timer(SWEEP_S, self.sweep),)

    def apply(self, key: bytes | None, value: bytes | None, partition: int = 0, offset: int = -1) -> None:
        """One exposure record (what the view does with each; also for tests without a broker)."""
        self.replica.apply(key, value, partition, offset)

    def _decode(self, key: bytes | None, value: bytes | None) -> tuple[str, ContactFlag | None]:
        if value is None:
            raise InvalidRecord("an exposure is never removed by a null value")
        try:
            exposure = _DECODER.decode(value)
        except msgspec.DecodeError as exc:
            raise InvalidRecord(str(exc)) from None
        first = exposure.first_overlap_at.timestamp()
        flag_days = self.policy.defaults_at(first).contact_flag_days
        return exposure.person_ref, flagged(self.flags.get(exposure.person_ref), exposure.case_id, first,
                                            exposure.overlap_minutes * 60, flag_days)

    def sweep(self, now: float) -> int:
        """Forget the flags that ended."""
        ended = [person for person, flag in self.flags.items() if flag.until < now]
        for person in ended:
            del self.flags[person]
        return len(ended)
