"""A centralized isolation point's day: what its residents were due and what was done
(docs/interface.md "Isolation points"). Pure functions of the residents, their observations and
the schedule parameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple


class ResidentDay(NamedTuple):
    """One resident's day at the point: observations counted, and what was missed."""

    person_ref: str
    temperatures: int  # temperature observations on the day
    temperature_due: int
    nat_due: bool  # a NAT day of the resident's schedule
    nat_done: bool  # at least one sample on the day
    phase_day: int  # day of the centralized phase

    @property
    def temperature_missed(self) -> bool:
        return self.temperatures < self.temperature_due

    @property
    def nat_missed(self) -> bool:
        return self.nat_due and not self.nat_done


class DaySummary(NamedTuple):
    residents: tuple[ResidentDay, ...]
    temperature_due: int
    temperature_done: int  # per resident at most what was due: a completion count
    nat_due: int
    nat_done: int


def summarize(residents: Sequence[tuple[str, int]], counts: Mapping[str, Sequence[int]], checks_per_day: int,
              nat_schedule_days: Sequence[int]) -> DaySummary:
    """The day of a point whose ``residents`` are (person_ref, day of the centralized phase),
    from ``counts``: person_ref -> (temperature observations, NAT samples) read for the day."""
    days = []
    for ref, phase_day in residents:
        temperatures, samples = counts.get(ref, (0, 0))
        days.append(ResidentDay(ref, temperatures, checks_per_day, phase_day in nat_schedule_days, samples > 0,
                                phase_day))
    return DaySummary(tuple(days), sum(d.temperature_due for d in days),
                      sum(min(d.temperatures, d.temperature_due) for d in days),
                      sum(d.nat_due for d in days), sum(d.nat_due and d.nat_done for d in days))
