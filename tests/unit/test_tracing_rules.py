"""Source tracing's rules at their boundaries: the overlap, the dwell, the look-back, the case
itself, retention."""

from __future__ import annotations

from streams.rules import tracing as t

MIN = 60.0
T = 1_700_000_000.0
TEN = 10 * MIN


def test_a_visit_lasts_the_venue_types_dwell_and_an_isolation_point_makes_none() -> None:
    assert t.visit_span(T, 90) == (T, T + 90 * MIN)
    assert t.visit_span(T, None) is None


def test_an_overlap_of_exactly_the_minimum_makes_a_contact_and_a_second_less_does_not() -> None:
    case = [(T, T + 60 * MIN)]
    assert t.contact_at_venue(case, [(T + 50 * MIN, T + 90 * MIN)], TEN) == t.Contact(T + 50 * MIN, TEN, T + 60 * MIN)
    assert t.contact_at_venue(case, [(T + 50 * MIN + 1, T + 90 * MIN)], TEN) is None


def test_visits_that_only_touch_where_a_dwell_ends_share_no_time() -> None:
    assert t.overlap_s((T, T + 45 * MIN), (T + 45 * MIN, T + 90 * MIN)) == 0
    assert t.contact_at_venue([(T, T + 45 * MIN)], [(T + 45 * MIN, T + 90 * MIN)], 0.001) is None


def test_the_minimum_holds_for_one_pair_and_the_total_counts_shared_time_once() -> None:
    case = [(T, T + 30 * MIN), (T + 20 * MIN, T + 40 * MIN)]  # two overlapping visits of the case
    # Five minutes with each of two separate case visits: no pair reaches ten.
    assert t.contact_at_venue([(T, T + 5 * MIN), (T + 60 * MIN, T + 65 * MIN)],
                              [(T, T + 70 * MIN)], TEN) is None
    contact = t.contact_at_venue(case, [(T + 10 * MIN, T + 35 * MIN), (T + 12 * MIN, T + 20 * MIN)], TEN)
    assert contact == t.Contact(T + 10 * MIN, 25 * MIN, T + 35 * MIN)  # 10..35, not 25 + 8


def test_the_case_is_never_its_own_contact_and_every_other_person_is_judged_alone() -> None:
    case = [(T, T + 60 * MIN)]
    others = [("case", (T, T + 60 * MIN)), ("a", (T + 55 * MIN, T + 70 * MIN)), ("a", (T + 56 * MIN, T + 58 * MIN)),
              ("b", (T + 30 * MIN, T + 50 * MIN))]
    found = t.contacts_at_venue(case, others, "case", TEN)
    assert set(found) == {"b"}  # a: 5 minutes at most, in one pair
    assert found["b"] == t.Contact(T + 30 * MIN, 20 * MIN, T + 50 * MIN)


def test_the_trace_window_reaches_back_from_onset_else_the_sample_and_includes_both_ends() -> None:
    day = t.DAY_S
    by_onset = t.trace_window(sampled_at=T, onset_at=T - day, reported_at=T + day, lookback_days=4)
    assert by_onset == (T - 5 * day, T + day)
    window = t.trace_window(sampled_at=T, onset_at=None, reported_at=T + day, lookback_days=4)
    assert window == (T - 4 * day, T + day)
    assert t.in_window(T - 4 * day, window) and t.in_window(T + day, window)
    assert not t.in_window(T - 4 * day - 1, window) and not t.in_window(T + day + 1, window)


def test_a_visit_is_kept_exactly_its_retention_and_no_longer() -> None:
    now = T + 14 * t.DAY_S
    assert not t.expired(T, now, 14)
    assert t.expired(T - 1, now, 14)
    assert t.flagged_until(T, 7) == T + 7 * t.DAY_S


def test_a_contact_is_flagged_from_the_first_overlap_to_flag_days_after_the_last_and_denied_or_reported() -> None:
    first = t.flagged(None, "case-1", T, 20 * MIN, 7)
    assert first == t.ContactFlag(T, T + 20 * MIN + 7 * t.DAY_S, ("case-1",), T + 20 * MIN)
    assert t.flag(first, T - 1, "deny") is None  # a scan from before they met
    deny = t.flag(first, T + 20 * MIN + 7 * t.DAY_S, "deny")  # the last second of the flag
    assert deny is not None and (deny.reason, deny.deny, deny.alert) == ("TRACED_CONTACT", True, "CONTACT_DETECTED")
    report = t.flag(first, T, "report")
    assert report is not None and not report.deny
    assert t.flag(first, T + 20 * MIN + 7 * t.DAY_S + 1, "deny") is None
    assert t.flag(None, T, "deny") is None


def test_a_second_exposure_widens_the_flag_and_adds_its_case_once() -> None:
    first = t.flagged(None, "case-1", T, 20 * MIN, 7)
    later = t.flagged(first, "case-2", T + t.DAY_S, 15 * MIN, 7)
    assert later == t.ContactFlag(T, T + t.DAY_S + 15 * MIN + 7 * t.DAY_S, ("case-1", "case-2"), T + t.DAY_S + 15 * MIN)
    assert t.flagged(later, "case-1", T + 60, 10 * MIN, 7).case_ids == ("case-1", "case-2")
