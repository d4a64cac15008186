"""``hcs tail`` lines: readable, coloured by severity, pseudonyms shortened."""

from __future__ import annotations

import click

from streams.ops.tail import format_alert, format_decision

ALERT = {"kind": "NAT_POSITIVE", "severity": "critical", "status": "firing", "district": "330106",
         "venue_id": "v1", "checkpoint_id": "c1", "person_ref": "abcdef0123456789abcdef", "reasons": ["NAT_POSITIVE"],
         "count": 2, "last_event_time": "2022-05-10T08:00:00.000+08:00"}


def test_an_alert_line_names_what_where_and_how_often() -> None:
    line = format_alert(ALERT, colour=False)
    assert line == ("2022-05-10T08:00:00.000+08:00  CRITICAL NAT_POSITIVE         firing   district 330106 venue v1 "
                    "checkpoint c1  reasons NAT_POSITIVE  count 2  person abcdef012345…")


def test_critical_alerts_are_red_and_bold() -> None:
    assert click.style("CRITICAL", fg="red", bold=True)[:9] in format_alert(ALERT, colour=True)


def test_a_decision_line_shows_the_decision_and_lateness() -> None:
    line = format_decision({"decision": "DENY", "reasons": ["NO_MASK"], "late": True, "district": "330106",
                            "venue_type": "mall", "venue_id": "v1", "checkpoint_id": "c1",
                            "event_time": "2022-05-10T08:00:00+08:00"}, colour=False)
    assert line.endswith("reasons NO_MASK  late") and "DENY" in line
