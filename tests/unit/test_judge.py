"""The default policy's rules, reason codes, precedence and boundaries (docs/interface.md "Rules and decisions")."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from streams.rules import codes as c
from tests import factories as f
from tests.unit.rules_helpers import verdict

T0 = f.T0


def nat(result: str = "negative", age: timedelta = timedelta(hours=1)) -> dict[str, object]:
    return {"result": result, "sampled_at": f.ts(T0 - age), "reported_at": None}


def test_a_compliant_scan_is_allowed_without_reasons() -> None:
    v = verdict()
    assert (v.decision, v.reasons, v.alerts) == (c.ALLOW, (), ())


# -- health code ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("color", "reason"), [
    ("red", c.HEALTH_CODE_RED), ("yellow", c.HEALTH_CODE_YELLOW), ("unknown", c.HEALTH_CODE_UNKNOWN)])
def test_a_non_green_code_is_denied(color: str, reason: str) -> None:
    v = verdict(health_code={"color": color})
    assert (v.decision, v.reasons) == (c.DENY, (reason,))


def test_red_raises_a_critical_key_person_alert_and_yellow_a_warning() -> None:
    red = verdict(health_code={"color": "red"})
    yellow = verdict(health_code={"color": "yellow"})
    assert [(a.kind, a.severity, a.reasons) for a in red.alerts] == [
        (c.KEY_PERSON_DETECTED, c.CRITICAL, (c.HEALTH_CODE_RED,))]
    assert [(a.kind, a.severity) for a in yellow.alerts] == [(c.KEY_PERSON_DETECTED, c.WARNING)]


def test_unknown_code_is_denied_but_raises_no_alert() -> None:
    assert verdict(health_code={"color": "unknown"}).alerts == ()


def test_popup_is_reported_at_a_mall_and_denied_at_a_school() -> None:
    mall = verdict(health_code={"color": "green", "popup": True})
    school = verdict(venue_type="school", health_code={"color": "green", "popup": True})
    assert (mall.decision, mall.reasons) == (c.ALLOW_WITH_REPORT, (c.HEALTH_CODE_POPUP,))
    assert (school.decision, school.reasons) == (c.DENY, (c.HEALTH_CODE_POPUP,))
    assert [(a.kind, a.severity) for a in mall.alerts] == [(c.KEY_PERSON_DETECTED, c.WARNING)]


def test_key_person_severity_is_the_max_of_the_scan() -> None:
    v = verdict(health_code={"color": "red", "popup": True})
    assert [(a.severity, a.reasons) for a in v.alerts] == [(c.CRITICAL, (c.HEALTH_CODE_POPUP, c.HEALTH_CODE_RED))]


# -- nucleic acid test ---------------------------------------------------------------------------

def test_nat_missing_is_denied_where_required() -> None:
    assert verdict(nat=None).reasons == (c.NAT_MISSING,)
    assert verdict(venue_type="other", nat=None).decision == c.ALLOW


def test_nat_sampled_more_than_five_minutes_after_the_scan_counts_as_missing() -> None:
    assert verdict(nat=nat(age=-timedelta(minutes=5))).reasons == ()
    assert verdict(nat=nat(age=-timedelta(minutes=5, seconds=1))).reasons == (c.NAT_MISSING,)


@pytest.mark.parametrize(("venue_type", "window_h"), [
    ("school", 48), ("kindergarten", 48), ("hospital", 48), ("nursing_home", 48), ("isolation_point", 24),
    ("transport_hub", 48), ("government", 72), ("hotel", 72), ("mall", 72), ("supermarket", 72), ("office", 72)])
def test_nat_age_equal_to_the_window_is_valid_and_one_second_more_is_expired(venue_type: str, window_h: int) -> None:
    at_window = verdict(venue_type=venue_type, nat=nat(age=timedelta(hours=window_h)))
    past = verdict(venue_type=venue_type, nat=nat(age=timedelta(hours=window_h, seconds=1)))
    assert c.NAT_EXPIRED not in at_window.reasons
    assert (past.decision, c.NAT_EXPIRED in past.reasons) == (c.DENY, True)


def test_nat_positive_is_denied_with_a_critical_alert() -> None:
    v = verdict(nat=nat("positive"))
    assert (v.decision, v.reasons) == (c.DENY, (c.NAT_POSITIVE,))
    assert [(a.kind, a.severity) for a in v.alerts] == [(c.NAT_POSITIVE_ALERT, c.CRITICAL)]


@pytest.mark.parametrize("venue_type", ["transport_hub", "government", "hotel", "mall", "supermarket", "office"])
def test_pending_nat_is_accepted_up_to_24_hours_where_allowed(venue_type: str) -> None:
    assert verdict(venue_type=venue_type, nat=nat("pending", timedelta(hours=24))).reasons == ()
    late = verdict(venue_type=venue_type, nat=nat("pending", timedelta(hours=24, seconds=1)))
    assert late.reasons == (c.NAT_PENDING,)


@pytest.mark.parametrize("venue_type", ["school", "kindergarten", "hospital", "nursing_home", "isolation_point"])
def test_pending_nat_is_denied_where_never_accepted(venue_type: str) -> None:
    assert verdict(venue_type=venue_type, nat=nat("pending", timedelta(minutes=1))).reasons == (c.NAT_PENDING,)


# -- vaccination ---------------------------------------------------------------------------------

@pytest.mark.parametrize("venue_type", ["nursing_home", "transport_hub"])
def test_vaccination_below_two_doses_is_denied_where_required(venue_type: str) -> None:
    one = {"doses": 1, "last_dose_at": f.ts(T0 - timedelta(days=30)), "exemption": False}
    two = {**one, "doses": 2}
    assert verdict(venue_type=venue_type, vaccination=one).reasons == (c.VACCINATION_REQUIRED,)
    assert verdict(venue_type=venue_type, vaccination=None).reasons == (c.VACCINATION_REQUIRED,)
    assert c.VACCINATION_REQUIRED not in verdict(venue_type=venue_type, vaccination=two).reasons


def test_an_exemption_waives_the_vaccination_rule() -> None:
    exempt = {"doses": 0, "last_dose_at": None, "exemption": True}
    assert verdict(venue_type="nursing_home", vaccination=exempt).decision == c.ALLOW


def test_vaccination_is_not_judged_where_not_required() -> None:
    assert verdict(vaccination=None).decision == c.ALLOW


# -- itinerary -----------------------------------------------------------------------------------

def itinerary(days_ago: int, starred: bool = True, hour: int = 12) -> dict[str, object]:
    seen = (T0 - timedelta(days=days_ago)).replace(hour=hour)
    return {"as_of": f.ts(T0), "cities": [{"name": "Elsewhere", "starred": starred, "last_seen_at": f.ts(seen)}]}


def test_a_starred_city_on_calendar_day_14_is_a_risk_and_day_15_is_not() -> None:
    assert verdict(itinerary=itinerary(14, hour=0)).reasons == (c.ITINERARY_RISK_AREA,)
    assert verdict(itinerary=itinerary(15, hour=23)).reasons == ()


def test_calendar_days_are_counted_in_shanghai_time() -> None:
    # 14 days and 8 hours before T0 (08:00+08:00) is 00:00 Shanghai time of day 14: still a risk.
    seen = T0 - timedelta(days=14, hours=8)
    in_utc = seen.astimezone(UTC).isoformat()  # the device may send any offset
    it = {"as_of": f.ts(T0), "cities": [{"name": "X", "starred": True, "last_seen_at": in_utc}]}
    assert verdict(itinerary=it).reasons == (c.ITINERARY_RISK_AREA,)
    seen15 = seen - timedelta(seconds=1)
    it15 = {"as_of": f.ts(T0), "cities": [{"name": "X", "starred": True, "last_seen_at": f.ts(seen15)}]}
    assert verdict(itinerary=it15).reasons == ()


def test_an_unstarred_city_is_no_risk() -> None:
    assert verdict(itinerary=itinerary(1, starred=False)).reasons == ()


def test_risk_itinerary_is_reported_at_a_transport_hub_and_denied_at_a_hospital() -> None:
    hub = verdict(venue_type="transport_hub", itinerary=itinerary(3))
    hospital = verdict(venue_type="hospital", itinerary=itinerary(3))
    assert (hub.decision, hub.reasons) == (c.ALLOW_WITH_REPORT, (c.ITINERARY_RISK_AREA,))
    assert (hospital.decision, hospital.reasons) == (c.DENY, (c.ITINERARY_RISK_AREA,))
    assert [(a.kind, a.severity) for a in hub.alerts] == [(c.KEY_PERSON_DETECTED, c.WARNING)]


def test_a_missing_itinerary_is_denied_only_where_required() -> None:
    assert verdict(venue_type="transport_hub", itinerary=None).reasons == (c.ITINERARY_MISSING,)
    assert verdict(venue_type="mall", itinerary=None).reasons == ()


# -- temperature and fever -----------------------------------------------------------------------

def test_fever_threshold_is_inclusive() -> None:
    assert verdict(temperature_c=37.2).decision == c.ALLOW
    v = verdict(temperature_c=37.3)
    assert (v.decision, v.reasons, v.starts_recheck) == (c.RECHECK, (c.FEVER,), True)


def test_a_first_fever_with_another_deny_reason_is_denied_with_fever_among_its_reasons() -> None:
    v = verdict(temperature_c=38.0, mask=False)
    assert (v.decision, v.reasons, v.starts_recheck) == (c.DENY, (c.FEVER, c.NO_MASK), False)


def test_a_first_fever_keeps_report_reasons_beside_fever() -> None:
    v = verdict(temperature_c=38.0, health_code={"color": "green", "popup": True})
    assert (v.decision, v.reasons) == (c.RECHECK, (c.FEVER, c.HEALTH_CODE_POPUP))


def test_a_recheck_still_at_the_threshold_is_denied_and_confirms_the_fever() -> None:
    v = verdict(temperature_c=37.3, recheck_open=True)
    assert (v.decision, v.reasons, v.ends_recheck) == (c.DENY, (c.FEVER,), True)
    assert [(a.kind, a.severity) for a in v.alerts] == [(c.FEVER_CONFIRMED, c.WARNING)]


def test_a_recheck_below_the_threshold_is_judged_as_usual() -> None:
    v = verdict(temperature_c=37.2, recheck_open=True)
    assert (v.decision, v.reasons, v.alerts, v.ends_recheck) == (c.ALLOW, (), (), True)


def test_a_recheck_without_a_reading_leaves_the_recheck_open() -> None:
    v = verdict(temperature_c=None, recheck_open=True)
    assert (v.decision, v.reasons, v.ends_recheck) == (c.DENY, (c.TEMP_NOT_MEASURED,), False)


def test_temperature_not_measured_is_denied_where_required_only() -> None:
    assert verdict(temperature_c=None).reasons == (c.TEMP_NOT_MEASURED,)
    assert verdict(venue_type="other", temperature_c=None, nat=None).decision == c.ALLOW


def test_temperature_is_not_judged_where_not_required() -> None:
    # docs/interface.md scopes the whole temperature rule to "where required" ("other": no).
    assert verdict(venue_type="other", temperature_c=39.0).decision == c.ALLOW


# -- mask ----------------------------------------------------------------------------------------

def test_no_mask_is_denied_everywhere_and_unobserved_is_not() -> None:
    for venue_type in ("mall", "other"):
        assert verdict(venue_type=venue_type, mask=False).reasons == (c.NO_MASK,)
        assert verdict(venue_type=venue_type, mask=None).decision == c.ALLOW


# -- precedence and shape ------------------------------------------------------------------------

def test_reasons_are_sorted_and_unique_and_deny_wins() -> None:
    v = verdict(health_code={"color": "yellow", "popup": True}, mask=False, temperature_c=None, nat=None)
    assert v.decision == c.DENY
    assert v.reasons == tuple(sorted({c.HEALTH_CODE_YELLOW, c.HEALTH_CODE_POPUP, c.NO_MASK, c.TEMP_NOT_MEASURED,
                                      c.NAT_MISSING}))


@pytest.mark.parametrize("venue_type", c.VENUE_TYPES)
def test_every_venue_type_allows_a_fully_compliant_scan(venue_type: str) -> None:
    assert verdict(venue_type=venue_type).decision == c.ALLOW
