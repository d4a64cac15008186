"""The finding state machine: every transition, every refused one, recurrences, deadlines and
look-backs (pure; streams/rules/findings.py)."""

from __future__ import annotations

import math

import pytest

from streams.contract.models import FindingEvent
from streams.rules import codes as c
from streams.rules import findings as fs

T = 1_652_140_800.0  # 2022-05-10 08:00 +08:00
H, D = 3600.0, 86400.0
DEADLINE_H, LOOKBACK_D = 48, 7


def event(action: str, at: float = T, **fields: object) -> FindingEvent:
    return FindingEvent("f-1", "venue-1", "mall", "330106", action, at, **fields)  # type: ignore[arg-type]


def step(finding: fs.Finding | None, action: str, at: float = T, **fields: object) -> fs.Finding:
    moved = fs.apply(finding, event(action, at, **fields), DEADLINE_H, LOOKBACK_D)
    assert isinstance(moved, fs.Finding), moved
    return moved


def opened() -> fs.Finding:
    return step(None, "open", problem="THREE_100")


def test_open_sets_the_deadline_from_the_policy_unless_given() -> None:
    f = opened()
    assert (f.status, f.deadline, f.repeat_count, f.source, f.history) == (
        fs.OPEN, T + DEADLINE_H * H, 0, "inspection", (("open", T),))
    assert step(None, "open", problem="MASK", deadline=T + H).deadline == T + H
    refused = fs.apply(None, event("open"), DEADLINE_H, LOOKBACK_D)
    assert isinstance(refused, fs.Refused) and refused.detail.startswith("problem")


@pytest.mark.parametrize(("path", "end"), [
    (("rectify",), fs.PENDING_VERIFICATION),
    (("rectify", "reject"), fs.OPEN),
    (("rectify", "reject", "rectify", "verify"), fs.VERIFIED),
    (("cancel",), fs.CANCELLED),
    (("rectify", "cancel"), fs.CANCELLED),
    (("rectify", "verify", "cancel"), fs.CANCELLED),
])
def test_every_allowed_transition(path: tuple[str, ...], end: str) -> None:
    f = opened()
    for i, action in enumerate(path, start=1):
        f = step(f, action, T + i * H)
    assert f.status == end and [a for a, _ in f.history] == ["open", *path]


@pytest.mark.parametrize(("path", "refused"), [
    ((), "verify"), ((), "reject"), ((), "open"),
    (("rectify",), "rectify"), (("rectify",), "open"),
    (("rectify", "verify"), "rectify"), (("rectify", "verify"), "reject"), (("rectify", "verify"), "verify"),
    (("cancel",), "cancel"), (("cancel",), "rectify"),
])
def test_every_refused_transition_changes_nothing(path: tuple[str, ...], refused: str) -> None:
    f = opened()
    for i, action in enumerate(path, start=1):
        f = step(f, action, T + i * H)
    result = fs.apply(f, event(refused, T + 10 * H), DEADLINE_H, LOOKBACK_D)
    assert isinstance(result, fs.Refused) and result.reason == fs.INVALID_TRANSITION
    assert refused in result.detail and f.status in result.detail
    assert fs.apply(None, event("rectify"), DEADLINE_H, LOOKBACK_D) == fs.Refused(
        fs.INVALID_TRANSITION, "action: rectify on a finding that was never opened")


def test_a_look_back_without_recurrence_closes_and_a_recurrence_before_it_reopens() -> None:
    verified = step(step(opened(), "rectify", T + H), "verify", T + 2 * H)
    assert verified.look_back_at == T + 2 * H + LOOKBACK_D * D
    assert fs.tick(verified, T + 2 * H + LOOKBACK_D * D - 1) is None
    closed = fs.tick(verified, T + 2 * H + LOOKBACK_D * D)
    assert closed is not None and closed.status == fs.CLOSED and closed.history[-1] == ("close", closed.updated_at)
    lb = T + 2 * H + LOOKBACK_D * D  # with a settling time, it closes that long after, at the look-back
    assert fs.tick(verified, lb + 7199, settle_s=7200) is None
    settled = fs.tick(verified, lb + 7200, settle_s=7200)
    assert settled is not None and settled.status == fs.CLOSED and settled.updated_at == lb
    assert fs.recur(closed, T + 3 * H, DEADLINE_H) is None  # closed: a later violation is a new story
    again = fs.recur(verified, T + 3 * D, DEADLINE_H)
    assert again is not None
    assert (again.status, again.repeat_count, again.deadline, again.look_back_at) == (
        fs.REOPENED, 1, T + 3 * D + DEADLINE_H * H, None)
    assert fs.recur(verified, T + 2 * H + LOOKBACK_D * D + 1, DEADLINE_H) is None  # after the look-back
    assert fs.recur(opened(), T + H, DEADLINE_H) is None  # only a verified finding reopens
    # A reopened finding is rectified and verified again; reopened twice, its alert is critical.
    twice = fs.recur(step(step(again, "rectify", T + 4 * D), "verify", T + 5 * D), T + 6 * D, DEADLINE_H)
    assert twice is not None and twice.repeat_count == 2
    assert fs.alert_severity("FINDING_REOPENED", 1) == c.WARNING
    assert fs.alert_severity("FINDING_REOPENED", 2) == c.CRITICAL


def test_a_finding_past_its_deadline_is_overdue_once() -> None:
    f = opened()
    assert fs.tick(f, f.deadline) is None  # at the deadline: still in time
    overdue = fs.tick(f, f.deadline + 1)
    assert overdue is not None and overdue.overdue and overdue.status == fs.OPEN
    assert fs.tick(overdue, f.deadline + D) is None  # once per deadline
    rectified = step(overdue, "rectify", f.deadline + 2)
    assert not rectified.overdue and fs.tick(rectified, f.deadline + D) is None  # pending: not overdue
    assert fs.alert_severity("FINDING_OVERDUE", 0) == c.WARNING
    assert fs.alert_severity("FINDING_OVERDUE", 1) == c.CRITICAL


def test_recurrences_by_problem() -> None:
    misses = {"code_misses": 0, "temperature_misses": 2, "mask_misses": 0}
    assert fs.is_recurrence("THREE_100", c.THREE_100_VIOLATION, misses)
    assert fs.is_recurrence("TEMPERATURE", c.THREE_100_VIOLATION, misses)
    assert not fs.is_recurrence("MASK", c.THREE_100_VIOLATION, misses)
    assert fs.is_recurrence("NAT_SCHEDULE", c.NAT_MISSED) and not fs.is_recurrence("NAT_SCHEDULE", c.OBSERVATION_MISSED)
    assert all(fs.is_recurrence("ISOLATION_MANAGEMENT", kind)
               for kind in (c.OBSERVATION_MISSED, c.NAT_MISSED, c.ISOLATION_BREACH_ALERT))
    assert not fs.is_recurrence("OTHER", c.THREE_100_VIOLATION)


def test_an_automatic_finding_is_one_a_venue_a_day() -> None:
    f = fs.auto_finding("venue-1", "mall", "330106", "2022-05-10", T, DEADLINE_H)
    assert (f.finding_id, f.source, f.problem, f.status, f.deadline) == (
        "auto|venue-1|2022-05-10", "auto", "THREE_100", fs.OPEN, T + DEADLINE_H * H)


def test_a_recurrence_dated_before_the_verification_does_not_reopen() -> None:
    verified = step(step(step(None, "open", T, problem="MASK"), "rectify", T + H), "verify", T + 2 * H)
    assert fs.recur(verified, T + 2 * H - 1, DEADLINE_H) is None  # what was verified as fixed
    at_once = fs.recur(verified, T + 2 * H, DEADLINE_H)  # the verification's own instant counts
    assert at_once is not None and at_once.status == fs.REOPENED
    reverified = step(step(at_once, "rectify", T + 3 * H), "verify", T + 4 * H)
    assert fs.recur(reverified, T + 3 * H, DEADLINE_H) is None  # before the latest verification
    assert fs.recur(reverified, T + 4 * H + 1, DEADLINE_H) is not None


def test_moves_at_is_the_first_stream_time_at_which_tick_moves_a_finding() -> None:
    opened = step(None, "open", T, problem="MASK")
    verified = step(step(opened, "rectify", T + H), "verify", T + 2 * H)
    for finding, settle in ((opened, 0.0), (verified, 600.0)):
        at = fs.moves_at(finding, settle)
        assert at is not None
        assert fs.tick(finding, math.nextafter(at, -math.inf), settle) is None
        assert fs.tick(finding, at, settle) is not None
    overdue_at = fs.moves_at(opened, 0.0)
    assert overdue_at is not None and overdue_at > opened.deadline  # once the deadline has passed, not at it
    assert fs.moves_at(step(opened, "rectify", T + H)) is None  # waits for a supervisor
