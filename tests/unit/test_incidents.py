"""The incident state machine (streams.rules.incidents): every transition, on a fake clock."""

from __future__ import annotations

import msgspec
import pytest

from streams.contract.models import AlertAction
from streams.contract.records import Alert
from streams.rules import incidents as rules
from streams.rules.incidents import ACKNOWLEDGED, RESOLVED, TRIGGERED, Escalation, Incident, Refused
from tests.schema_check import assert_valid

T0 = 1_700_000_000.0
MIN = 60.0
PLANS = {"critical": Escalation((0, 5, 15), 30), "warning": Escalation((0, 30))}


KEY = "KEY_PERSON_DETECTED|p|school-7"


def alert(n: int = 1, severity: str = "critical", status: str = "firing", key: str = KEY) -> Alert:
    return Alert(f"alert-{n}", key, "KEY_PERSON_DETECTED", severity, "330106", "school-7", "gate-1", "ab" * 8,
                 ["HEALTH_CODE_RED"], [f"ev-{n}"], "2026-12-06T10:00:00.000+08:00", "2026-12-06T10:00:00.000+08:00",
                 1, status, "default-v1")


def action(kind: str, n: int = 1, level: int = 1) -> AlertAction:
    return AlertAction(f"act-{kind}-{n}", KEY, kind, T0, level)


def opened(severity: str = "critical") -> Incident:
    incident = rules.on_alert(None, alert(severity=severity), T0)
    assert incident is not None
    return incident


def moved(incident: Incident | Refused | None) -> Incident:
    assert isinstance(incident, Incident), incident
    return incident


def test_an_alert_with_no_incident_triggers_one_at_level_1() -> None:
    incident = opened()
    assert (incident.status, incident.level, incident.alert_count) == (TRIGGERED, 1, 1)
    assert incident.alert_ids == ("alert-1",)
    assert incident.triggered_at == T0 and incident.escalations == ((1, T0),)
    assert incident.acknowledged_at is None and incident.resolved_at is None
    assert incident.incident_id == rules.incident_id(KEY, "alert-1")
    assert [s.action for s in incident.history] == ["trigger"]


def test_a_critical_incident_escalates_at_its_levels_and_no_further() -> None:
    incident = opened()
    assert rules.due(incident, PLANS) == T0 + 5 * MIN
    assert rules.tick(incident, T0 + 5 * MIN - 1, PLANS) is None
    l2 = moved(rules.tick(incident, T0 + 5 * MIN, PLANS))
    assert (l2.level, l2.escalations) == (2, ((1, T0), (2, T0 + 5 * MIN)))
    assert rules.due(l2, PLANS) == T0 + 15 * MIN
    l3 = moved(rules.tick(l2, T0 + 15 * MIN + 2, PLANS))
    assert l3.level == 3 and l3.escalations[-1] == (3, T0 + 15 * MIN + 2)
    assert rules.due(l3, PLANS) is None and rules.tick(l3, T0 + 99 * MIN, PLANS) is None
    assert [s.action for s in l3.history] == ["trigger", "escalate", "escalate"]


def test_escalations_that_fell_due_meanwhile_fire_once_at_the_highest_level() -> None:
    late = moved(rules.tick(opened(), T0 + 20 * MIN, PLANS))  # a worker down from minute 1 to 20
    assert late.level == 3 and late.escalations == ((1, T0), (3, T0 + 20 * MIN))


def test_a_severity_without_a_plan_stays_at_level_1() -> None:
    info = opened("info")
    assert rules.due(info, PLANS) is None and rules.tick(info, T0 + 10_000 * MIN, PLANS) is None


def test_an_ack_stops_escalation_and_its_timeout_returns_the_incident_to_level_1() -> None:
    acked = moved(rules.act(opened(), action("ack", level=1), T0 + 2 * MIN))
    assert (acked.status, acked.acknowledged_at, acked.history[-1].by_level) == (ACKNOWLEDGED, T0 + 2 * MIN, 1)
    assert rules.due(acked, PLANS) == T0 + 32 * MIN  # the ack timeout, not level 2
    assert rules.tick(acked, T0 + 31 * MIN, PLANS) is None
    back = moved(rules.tick(acked, T0 + 32 * MIN, PLANS))
    assert (back.status, back.level, back.escalations[-1]) == (TRIGGERED, 1, (1, T0 + 32 * MIN))
    assert back.acknowledged_at == T0 + 2 * MIN  # it happened; the latest ack is kept
    assert back.triggered_at == T0  # never changes
    # The new cycle escalates from the return, not from the trigger.
    assert rules.due(back, PLANS) == T0 + 37 * MIN


def test_a_renewed_ack_restarts_the_timeout() -> None:
    acked = moved(rules.act(opened(), action("ack", 1), T0 + MIN))
    again = moved(rules.act(acked, action("ack", 2, level=2), T0 + 20 * MIN))
    assert again.acknowledged_at == T0 + 20 * MIN and rules.due(again, PLANS) == T0 + 50 * MIN


def test_a_warning_acknowledged_never_returns() -> None:
    acked = moved(rules.act(opened("warning"), action("ack"), T0 + MIN))
    assert rules.due(acked, PLANS) is None


def test_a_resolve_ends_escalation_and_a_new_alert_opens_a_new_incident() -> None:
    resolved = moved(rules.act(opened(), action("resolve", level=2), T0 + 3 * MIN))
    assert (resolved.status, resolved.resolved_at) == (RESOLVED, T0 + 3 * MIN)
    assert rules.due(resolved, PLANS) is None
    fresh = moved(rules.on_alert(resolved, alert(2), T0 + 10 * MIN))
    assert fresh.incident_id != resolved.incident_id
    assert (fresh.status, fresh.level, fresh.triggered_at) == (TRIGGERED, 1, T0 + 10 * MIN)
    assert fresh.alert_ids == ("alert-2",)


def test_an_alert_for_a_live_incident_is_appended_without_a_page() -> None:
    acked = moved(rules.act(opened("warning"), action("ack"), T0 + MIN))
    appended = moved(rules.on_alert(acked, alert(2, "critical"), T0 + 2 * MIN))
    assert (appended.status, appended.level, appended.escalations) == (ACKNOWLEDGED, 1, ((1, T0),))
    assert appended.alert_ids == ("alert-1", "alert-2") and appended.alert_count == 2
    assert appended.severity == "critical"  # the highest: it now escalates as critical
    assert rules.due(appended, PLANS) == T0 + 31 * MIN
    assert appended.alert.alert_id == "alert-2"
    lower = moved(rules.on_alert(appended, alert(3, "warning"), T0 + 3 * MIN))
    assert lower.severity == "critical"


def test_a_raised_severity_escalates_a_triggered_incident_by_its_plan() -> None:
    warning = opened("warning")
    assert rules.due(warning, PLANS) == T0 + 30 * MIN
    critical = moved(rules.on_alert(warning, alert(2, "critical"), T0 + MIN))
    assert rules.due(critical, PLANS) == T0 + 5 * MIN


def test_a_resolved_alert_resolves_a_live_incident_and_nothing_else() -> None:
    resolved = moved(rules.on_alert(opened(), alert(2, status="resolved"), T0 + MIN))
    assert (resolved.status, resolved.resolved_at, resolved.history[-1].by_level) == (RESOLVED, T0 + MIN, None)
    assert rules.on_alert(None, alert(3, status="resolved"), T0) is None
    assert rules.on_alert(resolved, alert(4, status="resolved"), T0 + 2 * MIN) is None


def test_redelivered_alerts_and_actions_change_nothing() -> None:
    incident = opened()
    assert rules.on_alert(incident, alert(1), T0 + MIN) is None
    acked = moved(rules.act(incident, action("ack"), T0 + MIN))
    assert rules.act(acked, action("ack"), T0 + 2 * MIN) is None
    resolved = moved(rules.act(acked, action("resolve"), T0 + 3 * MIN))
    assert rules.on_alert(resolved, alert(1), T0 + 4 * MIN) is None  # not a new incident


@pytest.mark.parametrize("before", ["none", "resolved"])
def test_an_action_with_no_live_incident_is_refused(before: str) -> None:
    incident = None if before == "none" else moved(rules.act(opened(), action("resolve"), T0 + MIN))
    for kind in ("ack", "resolve"):
        refused = rules.act(incident, action(kind, 9), T0 + 2 * MIN)
        assert isinstance(refused, Refused) and refused.reason == "INVALID_TRANSITION", refused


def test_an_unknown_action_is_refused() -> None:
    refused = rules.act(opened(), action("snooze"), T0)
    assert isinstance(refused, Refused) and "snooze" in refused.detail


def test_alert_ids_are_bounded_and_the_count_exact() -> None:
    incident = opened()
    for n in range(2, 200):
        incident = moved(rules.on_alert(incident, alert(n), T0 + n))
    assert len(incident.alert_ids) == rules.MAX_ALERT_IDS and incident.alert_count == 199
    assert incident.alert_ids[-1] == "alert-199"


def test_the_record_matches_the_schema_and_round_trips_through_the_state() -> None:
    incident = moved(rules.tick(moved(rules.act(opened(), action("ack"), T0 + MIN)), T0 + 31 * MIN, PLANS))
    assert_valid("incident.v1", [msgspec.to_builtins(rules.record(incident))])
    stored = msgspec.json.decode(msgspec.json.encode(incident))  # as table recovery reads it back
    assert msgspec.convert(stored, Incident) == incident


def test_policy_plans_are_read_from_the_packaged_defaults() -> None:
    from streams.rules.policy import load_policy

    plans = dict(load_policy().defaults_at(T0).escalation)
    assert plans == {"critical": Escalation((0.0, 5.0, 15.0), 30.0), "warning": Escalation((0.0, 30.0), None)}
