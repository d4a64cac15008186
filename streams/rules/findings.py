"""Closed-loop supervision: a finding's states and transitions, as pure functions of the finding,
the event or time, and the policy's numbers (the contract's "Closed-loop supervision").

``open`` → OPEN; ``rectify`` OPEN (or REOPENED) → PENDING_VERIFICATION; ``reject``
PENDING_VERIFICATION → OPEN; ``verify`` PENDING_VERIFICATION → VERIFIED with a look-back due
``lookback_days`` later; ``cancel`` any state but the ends (CLOSED, CANCELLED) → CANCELLED. Any
other action is refused (``INVALID_TRANSITION``) and changes nothing. What the stream sees drives
the rest: a recurrence of the problem at the venue between the verification and the look-back
reopens the finding (``repeat_count`` + 1, a new deadline); a look-back reached without one closes
it; an OPEN or REOPENED finding past its deadline is overdue, once per deadline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import msgspec

from streams.contract.models import FindingEvent
from streams.rules import codes as c

OPEN, PENDING_VERIFICATION, VERIFIED = "OPEN", "PENDING_VERIFICATION", "VERIFIED"
REOPENED, CLOSED, CANCELLED = "REOPENED", "CLOSED", "CANCELLED"
STATUSES = (OPEN, PENDING_VERIFICATION, VERIFIED, REOPENED, CLOSED, CANCELLED)
ACTIONS = ("open", "rectify", "verify", "reject", "cancel")
PROBLEMS = ("THREE_100", "CODE_CHECK", "TEMPERATURE", "MASK", "ISOLATION_MANAGEMENT", "NAT_SCHEDULE", "OTHER")
INVALID_TRANSITION = "INVALID_TRANSITION"
HOUR_S, DAY_S = 3600.0, 86400.0

# Which alerts are a recurrence of which problem (THREE_100 violations: by the measure missed).
_MEASURE_OF = {"CODE_CHECK": "code_misses", "TEMPERATURE": "temperature_misses", "MASK": "mask_misses"}


class Finding(msgspec.Struct, frozen=True):
    """A finding's current state (what ``hcs.finding-status.v1`` carries)."""

    finding_id: str
    venue_id: str
    venue_type: str
    district: str
    problem: str
    source: str  # inspection | auto
    status: str
    repeat_count: int
    deadline: float
    overdue: bool
    look_back_at: float | None
    opened_at: float
    updated_at: float
    history: tuple[tuple[str, float], ...]  # (action, at), the stream's own ones included


class Refused(NamedTuple):
    """An action the finding's state does not allow: dead-lettered, nothing changes."""

    reason: str
    detail: str


def apply(finding: Finding | None, event: FindingEvent, rectify_deadline_hours: float,
          lookback_days: float) -> Finding | Refused:
    """``event`` applied to ``finding`` (None: not opened yet)."""
    action, at = event.action, event.at
    if finding is None:
        if action != "open":
            return Refused(INVALID_TRANSITION, f"action: {action} on a finding that was never opened")
        if event.problem not in PROBLEMS:
            return Refused("SCHEMA_INVALID", "problem: is required to open a finding")
        deadline = event.deadline if event.deadline is not None else at + rectify_deadline_hours * HOUR_S
        return Finding(event.finding_id, event.venue_id, event.venue_type, event.district, event.problem,
                       "inspection", OPEN, 0, deadline, False, None, at, at, (("open", at),))
    status = finding.status
    if action == "rectify" and status in (OPEN, REOPENED):
        return _moved(finding, PENDING_VERIFICATION, action, at)
    if action == "reject" and status == PENDING_VERIFICATION:
        return _moved(finding, OPEN, action, at)
    if action == "verify" and status == PENDING_VERIFICATION:
        return msgspec.structs.replace(_moved(finding, VERIFIED, action, at), look_back_at=at + lookback_days * DAY_S)
    if action == "cancel" and status not in (CLOSED, CANCELLED):
        return _moved(finding, CANCELLED, action, at)
    return Refused(INVALID_TRANSITION, f"action: {action} is not allowed on a finding that is {status}")


def auto_finding(venue_id: str, venue_type: str, district: str, date: str, at: float,
                 rectify_deadline_hours: float) -> Finding:
    """The THREE_100 finding a checkpoint's repeated violations open for its venue (one a day)."""
    return Finding(f"auto|{venue_id}|{date}", venue_id, venue_type, district, "THREE_100", "auto", OPEN, 0,
                   at + rectify_deadline_hours * HOUR_S, False, None, at, at, (("open", at),))


def is_recurrence(problem: str, alert_kind: str, details: Mapping[str, object] | None = None) -> bool:
    """Whether an alert at the finding's venue is a recurrence of its problem."""
    if problem == "THREE_100":
        return alert_kind == c.THREE_100_VIOLATION
    if problem in _MEASURE_OF:
        misses = (details or {}).get(_MEASURE_OF[problem])
        return alert_kind == c.THREE_100_VIOLATION and isinstance(misses, int) and misses > 0
    if problem == "NAT_SCHEDULE":
        return alert_kind == c.NAT_MISSED
    if problem == "ISOLATION_MANAGEMENT":
        return alert_kind in (c.OBSERVATION_MISSED, c.NAT_MISSED, c.ISOLATION_BREACH_ALERT)
    return False


def recur(finding: Finding, at: float, rectify_deadline_hours: float) -> Finding | None:
    """A recurrence at ``at``: a VERIFIED finding within its look-back — from its verification to the
    look-back, both included — is REOPENED (None: no change). A recurrence dated before the
    verification (a window's alert raised a grace after what it saw) is what was verified as fixed."""
    if finding.status != VERIFIED or finding.look_back_at is None or at > finding.look_back_at:
        return None
    if at < verified_at(finding):
        return None
    moved = _moved(finding, REOPENED, "reopen", at)
    return msgspec.structs.replace(moved, repeat_count=finding.repeat_count + 1,
                                   deadline=at + rectify_deadline_hours * HOUR_S, overdue=False, look_back_at=None)


def verified_at(finding: Finding) -> float:
    """When the finding was last verified (its history's last ``verify``)."""
    return next((at for action, at in reversed(finding.history) if action == "verify"), -math.inf)


def due(status: str, overdue: bool, deadline: float, look_back_at: float | None) -> float | None:
    """When time alone next changes a finding of these fields (its look-back, its deadline), or
    None: it waits for someone. Read from a stored finding's fields, before it is built."""
    if status == VERIFIED:
        return look_back_at
    if status in (OPEN, REOPENED) and not overdue:
        return deadline
    return None


def moves_at(finding: Finding, settle_s: float = 0.0) -> float | None:
    """The earliest stream time at which :func:`tick` moves the finding, or None: it waits for
    someone."""
    at = due(finding.status, finding.overdue, finding.deadline, finding.look_back_at)
    return None if at is None else _moving(finding.status, at, settle_s)


def _moving(status: str, at: float, settle_s: float) -> float:
    # A look-back closes once it is settle_s past; a deadline is overdue once passed.
    return at + settle_s if status == VERIFIED else math.nextafter(at, math.inf)


def tick(finding: Finding, stream_now: float, settle_s: float = 0.0) -> Finding | None:
    """What time alone does by ``stream_now``: close a VERIFIED finding whose look-back passed
    without a recurrence, or mark an OPEN or REOPENED one past its deadline overdue (once).

    A look-back closes ``settle_s`` after it is due: the alerts that count as recurrences are
    raised a grace after what they saw (a window's end, a day's), so one of before the look-back
    may come after it."""
    at = due(finding.status, finding.overdue, finding.deadline, finding.look_back_at)
    if at is None or stream_now < _moving(finding.status, at, settle_s):
        return None
    if finding.status == VERIFIED:
        return _moved(finding, CLOSED, "close", at)
    return msgspec.structs.replace(finding, overdue=True, updated_at=finding.deadline,
                                   history=(*finding.history, ("overdue", finding.deadline)))


def alert_severity(kind: str, repeat_count: int) -> str:
    """FINDING_OVERDUE: warning, critical once reopened; FINDING_REOPENED: critical from the second."""
    if kind == c.FINDING_OVERDUE:
        return c.CRITICAL if repeat_count >= 1 else c.WARNING
    return c.CRITICAL if repeat_count >= 2 else c.WARNING


def _moved(finding: Finding, status: str, action: str, at: float) -> Finding:
    overdue = finding.overdue and status in (OPEN, REOPENED)
    return msgspec.structs.replace(finding, status=status, updated_at=at, overdue=overdue,
                                   history=(*finding.history, (action, at)))
