"""Key personnel under management ("14+7+7"): a plan's phase on a local day, and what it means
for a scan (docs/interface.md "Managed personnel").

Pure functions of a plan, a day and a venue. A plan's days are counted in Asia/Shanghai
calendar days from its ``start_date`` (day 1) through its phases in order; before day 1 and
after the last phase the person is not managed. The phase is never inferred from the health
code: "green but restricted" exists only through the register.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from streams.contract.models import Plan
from streams.rules import codes as c

CENTRALIZED_ISOLATION = "centralized_isolation"
HOME_ISOLATION = "home_isolation"
HEALTH_MONITORING = "health_monitoring"
PHASE_KINDS = (CENTRALIZED_ISOLATION, HOME_ISOLATION, HEALTH_MONITORING)


class PhaseOn(NamedTuple):
    """Where a plan is on a day: the phase's kind and the plan's day number (1 = start_date)."""

    kind: str
    day: int


def position(start_day: int, phases: tuple[tuple[str, int], ...], day: int) -> tuple[str, int, int] | None:
    """Where a plan starting on ``start_day`` is on local day ``day`` (days since the epoch):
    (the phase's kind, the plan's day, the day within the phase), each day counted from 1; None
    when the person is not managed that day (before day 1, after the last phase)."""
    n = day - start_day + 1
    if n < 1:
        return None
    before = 0
    for kind, days in phases:
        if n <= before + days:
            return kind, n, n - before
        before += days
    return None


def phase_on(plan: Plan, day: int) -> PhaseOn | None:
    """The phase of ``plan`` on local day ``day``, or None if the person is not managed that day."""
    at = position(plan.start_day, plan.phases, day)
    return None if at is None else PhaseOn(at[0], at[1])


def centralized_day(plan: Plan, day: int) -> int | None:
    """The day of the plan's centralized isolation phase (1 = its first) on local day ``day``,
    or None when the person is not in centralized isolation that day."""
    at = position(plan.start_day, plan.phases, day)
    return at[2] if at is not None and at[0] == CENTRALIZED_ISOLATION else None


class Restriction(NamedTuple):
    """What a managed person's phase means for a scan at a venue."""

    reason: str  # ISOLATION_BREACH, UNDER_HEALTH_MONITORING, or TRACED_CONTACT (rules.tracing.flag)
    deny: bool  # deny-level (else report-level)
    alert: str | None  # the alert kind it raises, if any


def restriction(plan: Plan, phase: PhaseOn, venue_id: str, isolation_action: str,
                monitoring_action: str) -> Restriction | None:
    """The reason a scan of a person in ``phase`` at ``venue_id`` gets, under the venue's
    ``isolation_action`` and ``monitoring_action`` (``deny`` or ``report``); None for a scan at
    the person's own centralized isolation point."""
    if phase.kind == HEALTH_MONITORING:
        deny = monitoring_action == "deny"
        return Restriction(c.UNDER_HEALTH_MONITORING, deny, c.MONITORING_RESTRICTED if deny else None)
    if phase.kind == CENTRALIZED_ISOLATION and venue_id == plan.isolation_point_id:
        return None
    return Restriction(c.ISOLATION_BREACH, isolation_action == "deny", c.ISOLATION_BREACH_ALERT)


def alert_details(plan: Plan, phase: PhaseOn) -> dict[str, Any]:
    """The ``details`` of an ISOLATION_BREACH or MONITORING_RESTRICTED alert."""
    return {"plan_id": plan.plan_id, "plan": plan.plan, "phase": phase.kind, "day": phase.day,
            "isolation_point_id": plan.isolation_point_id, "managing_district": plan.district}
