"""`hcs tail` lines: readable, coloured by severity, pseudonyms shortened, one time form with its
zone, no Python reprs, and short enough for a terminal."""

from __future__ import annotations

import re

import click
import pytest

from streams.ops.tail import format_alert, format_decision, format_incident
from streams.times import local_time, local_time_of

ALERT = {"kind": "NAT_POSITIVE", "severity": "critical", "status": "firing", "district": "330106",
         "venue_id": "v1", "checkpoint_id": "c1", "person_ref": "abcdef0123456789abcdef", "reasons": ["NAT_POSITIVE"],
         "count": 2, "last_event_time": "2022-05-10T08:00:00.000+08:00"}

# The details of every kind that has them, as the worker writes them (a None, lists, times).
REALISTIC = [
    {**ALERT, "kind": "THREE_100_VIOLATION", "severity": "warning", "person_ref": None, "reasons": [], "count": 1,
     "details": {"window_start": "2022-05-10T08:00:00.000+08:00", "window_end": "2022-05-10T08:05:00.000+08:00",
                 "scans": 41, "entries": None, "code_misses": 0, "temperature_misses": 3, "mask_misses": 1}},
    {**ALERT, "kind": "ISOLATION_BREACH", "reasons": ["ISOLATION_BREACH"],
     "venue_id": "330106-mall-0007", "checkpoint_id": "330106-mall-0007-gate-02",
     "details": {"plan_id": "plan-330106-000123", "plan": "14+7+7", "phase": "centralized_isolation", "day": 4,
                 "isolation_point_id": "ip-330106-02", "managing_district": "330105"}},
    {**ALERT, "kind": "CONTACT_DETECTED", "severity": "warning", "reasons": ["CONTACT_DETECTED"],
     "details": {"case_ids": ["330106-20220510-1a2b3c4d", "330106-20220510-5e6f7a8b", "330102-20220509-0c1d2e3f",
                              "330105-20220509-99aa88bb"], "last_exposure_at": "2022-05-09T23:10:00.000+00:00"}},
    {**ALERT, "kind": "CHECKPOINT_SILENT", "severity": "warning", "status": "resolved", "person_ref": None,
     "reasons": [], "details": {"silent_since": "2022-05-10T07:40:12.345+08:00", "silent_after_minutes": 15}},
    {**ALERT, "kind": "RESIDENT_FEVER", "severity": "warning", "reasons": ["FEVER"],
     "details": {"temperature_c": 37.6}},
    {**ALERT, "kind": "CASE_TRACED", "severity": "warning", "person_ref": None, "checkpoint_id": None,
     "venue_id": "hcs.cases.v1", "reasons": [], "details": {"visits": 12, "venues": 5, "contacts": 240}},
]
TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+08 ")


def test_an_alert_line_names_when_what_where_how_often_and_whom() -> None:
    line = format_alert(ALERT, colour=False)
    assert line == "2022-05-10 08:00:00+08 CRIT NAT_POSITIVE        330106 v1 c1 count 2 person abcdef0123…"


def test_critical_alerts_are_red_and_bold() -> None:
    assert click.style("CRIT", fg="red", bold=True)[:9] in format_alert(ALERT, colour=True)


@pytest.mark.parametrize("alert", REALISTIC, ids=lambda a: a["kind"])
def test_every_kinds_line_fits_a_terminal_without_python_reprs(alert: dict[str, object]) -> None:
    line = format_incident({"status": "TRIGGERED", "level": 1, "history": [{"action": "trigger"}], "alert": alert},
                           colour=False)
    assert len(line) <= 180, (len(line), line)  # were 200-309 characters
    assert not re.search(r"\bNone\b|\bTrue\b|\bFalse\b|[\[\]()']|\d\.\d{3}\+|T\d\d:", line), line
    assert TIME.match(line.removeprefix("TRIGGERED    L1 new       ")), line


def test_details_say_first_what_each_kind_needs_in_the_districts_time_without_none() -> None:
    violation, breach, contact, silent, fever, traced = (format_alert(a, colour=False) for a in REALISTIC)
    # entries: None, left out; zero misses too.
    assert violation.endswith("330106 v1 c1  08:00:00-08:05:00 41 scans, missed temperature 3, mask 1")
    # The venue's id begins with the district's, the checkpoint's with the venue's: said once.
    assert " 330106-mall-0007-gate-02 count 2 " in breach
    assert breach.endswith("  14+7+7 centralized_isolation day 4, of 330105")
    assert contact.endswith("  case 330106-20220510-1a2b3c4d +3, exposed 07:10:00")  # 23:10 UTC
    assert " resolved " in silent and silent.endswith("  silent since 07:40:12")
    assert fever.endswith(" FEVER count 2 person abcdef0123…  37.6 °C")
    assert traced.endswith(" 330106 hcs.cases.v1 count 2  12 visits, 5 venues, 240 contacts")


def test_a_kind_without_a_summary_shows_its_details_as_key_value_without_reprs() -> None:
    line = format_alert({**ALERT, "kind": "SOMETHING_NEW", "details": {
        "a": None, "b": [1, 2, 3, 4, 5], "c": True, "d": 0.5, "at": "2022-05-10T00:00:00.000+00:00"}}, colour=False)
    assert line.endswith("  b=1,2,3+2 c=yes d=0.5 at=08:00:00")


def test_a_decision_line_shows_the_decision_and_lateness() -> None:
    line = format_decision({"decision": "DENY", "reasons": ["NO_MASK"], "late": True, "district": "330106",
                            "venue_type": "mall", "venue_id": "v1", "checkpoint_id": "c1",
                            "event_time": "2022-05-10T08:00:00.123456+08:00"}, colour=False)
    assert line == "2022-05-10 08:00:00+08 DENY              330106 mall v1 c1 NO_MASK late"


def test_one_time_form_for_people_everywhere() -> None:
    assert local_time(1652140800.0) == "2022-05-10 08:00:00+08"
    assert local_time_of("2022-05-10T00:00:00.999+00:00") == "2022-05-10 08:00:00+08"
    assert local_time_of(None) == "-" and local_time_of("soon") == "soon"
