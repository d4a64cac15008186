"""Incidents: the life of one alert dedup key, as pure functions of the incident, the alert or
action, the processing time and the escalation plan (the contract's "Alert acknowledgement and
escalation"; PagerDuty's model).

An alert with no live incident for its dedup key opens one, TRIGGERED at level 1 (its first
notification); an alert for a TRIGGERED or ACKNOWLEDGED incident is appended to it (no new page;
the incident keeps the highest severity of its alerts and escalates by it); one after RESOLVED
opens a new incident; a ``resolved`` alert resolves a live one. ``ack`` moves TRIGGERED (or
ACKNOWLEDGED: a renewed ack) to ACKNOWLEDGED, ``resolve`` a live incident to RESOLVED; any other
action is refused (``INVALID_TRANSITION``) and changes nothing. Time does the rest: a TRIGGERED
incident reaches level n at ``levels[n-1]`` minutes after its cycle began (its trigger, or its
latest return to level 1) and nothing more after the last level; an ACKNOWLEDGED one not resolved
``ack_timeout_minutes`` after its latest ack returns to TRIGGERED and starts again at level 1.
An escalation that fell due while nobody looked (a worker down) fires once: straight to the
highest level due.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import NamedTuple

import msgspec

from streams.contract.models import AlertAction
from streams.contract.records import Alert, Escalated, IncidentRecord, IncidentStep
from streams.rules import codes as c
from streams.times import rfc3339

TRIGGERED, ACKNOWLEDGED, RESOLVED = "TRIGGERED", "ACKNOWLEDGED", "RESOLVED"
STATUSES = (TRIGGERED, ACKNOWLEDGED, RESOLVED)
LIVE = (TRIGGERED, ACKNOWLEDGED)
ACTIONS = ("ack", "resolve")
# The steps of an incident's history: the on-call actions, and the stream's own.
TRIGGER, APPEND, ESCALATE, TIMEOUT = "trigger", "append", "escalate", "timeout"
INVALID_TRANSITION = "INVALID_TRANSITION"
MAX_ALERT_IDS = 100  # an incident lists its newest alert ids; ``alert_count`` stays exact
MAX_ACTION_IDS = 20  # the newest actions' event ids, to drop a redelivered one
_INCIDENT_NS = uuid.UUID("0b7e2f3c-5d1a-4c8e-9f6b-3a2d1c0e9b87")


class Escalation(NamedTuple):
    """A severity's escalation plan: minutes after a cycle's start at which level 1, 2, 3... are
    notified (the first is 0: the trigger), and how long an ack holds (None: for ever)."""

    levels: tuple[float, ...]
    ack_timeout_minutes: float | None = None


NO_ESCALATION = Escalation((0.0,))  # a severity the policy gives no plan: level 1 only


class Step(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One change: what, when (processing time), the incident's level after it, and for an
    on-call action the level of who acted."""

    action: str
    at: float
    level: int
    by_level: int | None = None


class Incident(msgspec.Struct, frozen=True, gc=False):
    """An incident's state (what ``hcs.incidents.v1`` carries, with its latest alert)."""

    incident_id: str
    dedup_key: str
    kind: str
    severity: str
    district: str
    status: str
    level: int
    alert_ids: tuple[str, ...]  # the newest MAX_ALERT_IDS
    alert_count: int
    triggered_at: float
    acknowledged_at: float | None
    resolved_at: float | None
    escalations: tuple[tuple[int, float], ...]  # every notification: (level, at)
    history: tuple[Step, ...]
    action_ids: tuple[str, ...]  # the newest actions' event ids
    alert: Alert  # the latest alert: what the bridge posts, what the on-call team reads

    @property
    def cycle_start(self) -> float:
        """When the current escalation cycle began: the latest notification of level 1."""
        return next(at for level, at in reversed(self.escalations) if level == 1)

    @property
    def updated_at(self) -> float:
        return self.history[-1].at


class Refused(NamedTuple):
    """An action the incident's state does not allow: dead-lettered, nothing changes."""

    reason: str
    detail: str


def plan_of(plans: Mapping[str, Escalation], severity: str) -> Escalation:
    return plans.get(severity, NO_ESCALATION)


def incident_id(dedup_key: str, first_alert_id: str) -> str:
    """Derived from the dedup key and its first alert: a replayed alert opens the same incident."""
    return str(uuid.uuid5(_INCIDENT_NS, f"{dedup_key}|{first_alert_id}"))


def on_alert(incident: Incident | None, alert: Alert, now: float) -> Incident | None:
    """``alert`` read at ``now`` applied to its dedup key's incident (None: there is none); None
    when nothing changes (a redelivered alert, a resolved alert with no live incident)."""
    if incident is not None and alert.alert_id in incident.alert_ids:
        return None
    live = incident is not None and incident.status in LIVE
    if alert.status == "resolved":
        if incident is None or not live:
            return None
        appended = _appended(incident, alert)
        return _moved(appended, RESOLVED, "resolve", now, resolved_at=now)
    if incident is None or not live:
        return Incident(incident_id(alert.dedup_key, alert.alert_id), alert.dedup_key, alert.kind, alert.severity,
                        alert.district, TRIGGERED, 1, (alert.alert_id,), 1, now, None, None, ((1, now),),
                        (Step(TRIGGER, now, 1),), (), alert)
    appended = _appended(incident, alert)
    return msgspec.structs.replace(appended, history=(*appended.history, Step(APPEND, now, appended.level)))


def act(incident: Incident | None, action: AlertAction, now: float) -> Incident | Refused | None:
    """An on-call action read at ``now``; None for a redelivered one (its event id seen)."""
    if incident is not None and action.event_id and action.event_id in incident.action_ids:
        return None
    if incident is None or incident.status not in LIVE:
        state = "none" if incident is None else f"its incident is {incident.status}"
        return Refused(INVALID_TRANSITION, f"action: {action.action} with no live incident for the dedup_key ({state})")
    if action.action == "ack":
        moved = _moved(incident, ACKNOWLEDGED, "ack", now, by_level=action.level, acknowledged_at=now)
    elif action.action == "resolve":
        moved = _moved(incident, RESOLVED, "resolve", now, by_level=action.level, resolved_at=now)
    else:
        return Refused(INVALID_TRANSITION, f"action: {action.action} is not one of {', '.join(ACTIONS)}")
    ids = (*incident.action_ids, action.event_id)[-MAX_ACTION_IDS:] if action.event_id else incident.action_ids
    return msgspec.structs.replace(moved, action_ids=ids)


def due(incident: Incident, plans: Mapping[str, Escalation]) -> float | None:
    """When time alone next changes the incident (its next level, its ack's timeout), or None."""
    plan = plan_of(plans, incident.severity)
    if incident.status == TRIGGERED:
        if incident.level >= len(plan.levels):
            return None
        return incident.cycle_start + plan.levels[incident.level] * 60.0
    if incident.status == ACKNOWLEDGED and plan.ack_timeout_minutes is not None:
        return (incident.acknowledged_at or incident.triggered_at) + plan.ack_timeout_minutes * 60.0
    return None


def tick(incident: Incident, now: float, plans: Mapping[str, Escalation]) -> Incident | None:
    """What time alone does by ``now``: escalate a TRIGGERED incident to the highest level due
    (one notification), or return an ACKNOWLEDGED one whose ack timed out to level 1."""
    at = due(incident, plans)
    if at is None or now < at:
        return None
    if incident.status == ACKNOWLEDGED:
        moved = _moved(incident, TRIGGERED, TIMEOUT, now, level=1)
        return msgspec.structs.replace(moved, escalations=(*incident.escalations, (1, now)))
    levels = plan_of(plans, incident.severity).levels
    start = incident.cycle_start
    level = max(n for n in range(incident.level + 1, len(levels) + 1) if start + levels[n - 1] * 60.0 <= now)
    moved = _moved(incident, TRIGGERED, ESCALATE, now, level=level)
    return msgspec.structs.replace(moved, escalations=(*incident.escalations, (level, now)))


def record(incident: Incident) -> IncidentRecord:
    """The ``hcs.incidents.v1`` record of an incident's state."""
    def when(at: float | None) -> str | None:
        return None if at is None else rfc3339(at)

    return IncidentRecord(
        incident.incident_id, incident.dedup_key, incident.kind, incident.severity, incident.district, incident.status,
        incident.level, list(incident.alert_ids), incident.alert_count, rfc3339(incident.triggered_at),
        when(incident.acknowledged_at), when(incident.resolved_at),
        [Escalated(level, rfc3339(at)) for level, at in incident.escalations], rfc3339(incident.updated_at),
        [IncidentStep(s.action, rfc3339(s.at), s.level, s.by_level) for s in incident.history], incident.alert)


def _appended(incident: Incident, alert: Alert) -> Incident:
    severity = max(incident.severity, alert.severity, key=lambda s: c.SEVERITY_RANK.get(s, 0))
    return msgspec.structs.replace(incident, severity=severity, alert=alert, alert_count=incident.alert_count + 1,
                                   alert_ids=(*incident.alert_ids, alert.alert_id)[-MAX_ALERT_IDS:])


def _moved(incident: Incident, status: str, action: str, now: float, by_level: int | None = None,
           level: int | None = None, acknowledged_at: float | None = None,
           resolved_at: float | None = None) -> Incident:
    level = incident.level if level is None else level
    return msgspec.structs.replace(
        incident, status=status, level=level,
        acknowledged_at=incident.acknowledged_at if acknowledged_at is None else acknowledged_at,
        resolved_at=incident.resolved_at if resolved_at is None else resolved_at,
        history=(*incident.history, Step(action, now, level, by_level)))


def parse_plans(raw: Mapping[str, Mapping[str, object]]) -> tuple[tuple[str, Escalation], ...]:
    """The policy's ``escalation`` param (``{severity: {levels, ack_timeout_minutes}}``) as
    hashable plans, by severity."""
    plans = []
    for severity, spec in sorted(raw.items()):
        levels = spec.get("levels") or [0]
        timeout = spec.get("ack_timeout_minutes")
        plans.append((severity, Escalation(tuple(float(m) for m in levels),  # type: ignore[attr-defined]
                                           None if timeout is None else float(timeout))))  # type: ignore[arg-type]
    return tuple(plans)
