"""Judging one scan under its policy parameters at its event time (docs/interface.md "Rules and decisions").

Everything here is a pure function of its arguments: the scan, the effective params, and the
state of the person's fever recheck at this venue, which the caller looks up and passes in.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

from streams.contract.models import ScanEvent
from streams.rules import codes as c
from streams.rules.management import Restriction
from streams.rules.policy import Params
from streams.times import shanghai_day

# A NAT sampled up to this long after the scan counts as taken before it (device clock skew).
NAT_SAMPLED_SKEW_S = 5 * 60
# A scan read more than this long after its event_time is late.
LATE_AFTER_S = 5 * 60
# Calendar-day rules use Asia/Shanghai, which has kept UTC+8 without daylight saving since 1991.
HOUR_S = 3600.0

_KEY_PERSON_SEVERITY = {
    c.HEALTH_CODE_RED: c.CRITICAL,
    c.HEALTH_CODE_YELLOW: c.WARNING,
    c.HEALTH_CODE_POPUP: c.WARNING,
    c.ITINERARY_RISK_AREA: c.WARNING,
}


class AlertSpec(NamedTuple):
    """An alert a scan raises, before deduplication: kind, severity and the reasons behind it."""

    kind: str
    severity: str
    reasons: tuple[str, ...]


class Judgement(NamedTuple):
    """A scan's judgement (a named tuple: one is made per scan, at a third of a frozen dataclass's cost)."""

    decision: str
    reasons: tuple[str, ...]  # sorted, no duplicates
    alerts: tuple[AlertSpec, ...]
    starts_recheck: bool  # a first fever reading: a recheck window opens for person+venue
    ends_recheck: bool  # this scan was the recheck of an open window (fever confirmed or cleared)


_CLEAR = Judgement(c.ALLOW, (), (), False, False)


def is_late(event_time: float, read_at: float) -> bool:
    return read_at - event_time > LATE_AFTER_S


def _nat_reasons(scan: ScanEvent, p: Params) -> str | None:
    if p.nat_window_hours is None:
        return None
    nat = scan.nat
    if nat is None or nat.sampled_at - scan.event_time > NAT_SAMPLED_SKEW_S:
        return c.NAT_MISSING
    if nat.result == "positive":
        return c.NAT_POSITIVE
    age = scan.event_time - nat.sampled_at
    if nat.result == "pending":
        if p.nat_accept_pending_hours is not None and age <= p.nat_accept_pending_hours * HOUR_S:
            return None
        return c.NAT_PENDING
    if age > p.nat_window_hours * HOUR_S:
        return c.NAT_EXPIRED
    return None


def _itinerary_risk(scan: ScanEvent, p: Params) -> bool:
    if scan.itinerary is None:
        return False
    for seen_at in scan.itinerary.starred_seen_at:  # mostly none: no day arithmetic then
        if shanghai_day(scan.event_time) - shanghai_day(seen_at) <= p.itinerary_lookback_days:
            return True
    return False


def judge(scan: ScanEvent, p: Params, recheck_open: bool = False, managed: Restriction | None = None) -> Judgement:
    """Judge ``scan`` under ``p``; ``recheck_open``: a RECHECK of this person at this venue is
    awaiting its second reading (the caller checked it is within ``recheck_window_minutes``);
    ``managed``: what the person's management plan means at this venue today, if anything
    (:func:`streams.rules.management.restriction`)."""
    deny: set[str] = set()
    report: set[str] = set()
    if managed is not None:
        (deny if managed.deny else report).add(managed.reason)
    _code_and_certificates(scan, p, deny, report)
    if scan.mask is False:
        deny.add(c.NO_MASK)
    starts_recheck = ends_recheck = fever_confirmed = recheck = False
    if p.temperature_required:
        temp = scan.temperature_c
        if temp is None:
            deny.add(c.TEMP_NOT_MEASURED)
        elif recheck_open:
            # The second reading settles the open recheck either way.
            ends_recheck = True
            if temp >= p.fever_threshold_c:
                deny.add(c.FEVER)
                fever_confirmed = True
        elif temp >= p.fever_threshold_c:
            if deny:
                deny.add(c.FEVER)
            else:
                recheck = starts_recheck = True
                report.add(c.FEVER)

    if not (deny or report or ends_recheck):
        return _CLEAR  # most scans: allowed, nothing to report
    reasons = tuple(sorted(deny | report))
    if deny:
        decision = c.DENY
    elif recheck:
        decision = c.RECHECK
    elif report:
        decision = c.ALLOW_WITH_REPORT
    else:
        decision = c.ALLOW  # a recheck settled without fever
    alerts = _alerts(reasons, fever_confirmed, None if managed is None else managed.alert)
    return Judgement(decision, reasons, alerts, starts_recheck, ends_recheck)


def _code_and_certificates(scan: ScanEvent, p: Params, deny: set[str], report: set[str]) -> None:
    """The health code and the three certificates (NAT, vaccination, travel record)."""
    if scan.color == "red":
        deny.add(c.HEALTH_CODE_RED)
    elif scan.color == "yellow":
        deny.add(c.HEALTH_CODE_YELLOW)
    elif scan.color == "unknown":
        deny.add(c.HEALTH_CODE_UNKNOWN)
    if scan.popup:
        (deny if p.popup_action == "deny" else report).add(c.HEALTH_CODE_POPUP)
    nat = _nat_reasons(scan, p)
    if nat is not None:
        deny.add(nat)
    if p.vaccination_required:
        vac = scan.vaccination
        if vac is None or (vac.doses < p.min_vaccine_doses and not vac.exemption):
            deny.add(c.VACCINATION_REQUIRED)
    if scan.itinerary is None:
        if p.itinerary_required:
            deny.add(c.ITINERARY_MISSING)
    elif _itinerary_risk(scan, p):
        (deny if p.itinerary_risk_action == "deny" else report).add(c.ITINERARY_RISK_AREA)


@cache  # a pure function of a few dozen distinct inputs, called for every scan
def _alerts(reasons: tuple[str, ...], fever_confirmed: bool, managed_alert: str | None) -> tuple[AlertSpec, ...]:
    out: list[AlertSpec] = []
    if managed_alert == c.ISOLATION_BREACH_ALERT:
        out.append(AlertSpec(c.ISOLATION_BREACH_ALERT, c.CRITICAL, (c.ISOLATION_BREACH,)))
    elif managed_alert == c.MONITORING_RESTRICTED:
        out.append(AlertSpec(c.MONITORING_RESTRICTED, c.WARNING, (c.UNDER_HEALTH_MONITORING,)))
    elif managed_alert == c.CONTACT_DETECTED:
        out.append(AlertSpec(c.CONTACT_DETECTED, c.CRITICAL, (c.TRACED_CONTACT,)))
    key_reasons = tuple(r for r in reasons if r in _KEY_PERSON_SEVERITY)
    if key_reasons:
        severity = max((_KEY_PERSON_SEVERITY[r] for r in key_reasons), key=c.SEVERITY_RANK.__getitem__)
        out.append(AlertSpec(c.KEY_PERSON_DETECTED, severity, key_reasons))
    if c.NAT_POSITIVE in reasons:
        out.append(AlertSpec(c.NAT_POSITIVE_ALERT, c.CRITICAL, (c.NAT_POSITIVE,)))
    if fever_confirmed:
        out.append(AlertSpec(c.FEVER_CONFIRMED, c.WARNING, (c.FEVER,)))
    return tuple(out)
