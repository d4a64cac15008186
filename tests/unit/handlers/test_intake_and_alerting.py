"""Intake (dedup, dead letters) and alert admission, driven with plain values."""

from __future__ import annotations

from streams.concepts.base import RecordRef
from streams.contract import topics
from streams.contract.models import Rejected
from streams.rules.alerts import AlertDraft
from streams.rules.compliance import DistrictMinute
from tests.unit.handlers.harness import Handlers

T0 = 1_652_140_800.0
REF = RecordRef(topics.SCANS, "hcs.scans.v1", 3, 41, b"venue-1", T0)


def test_an_id_is_claimed_once_within_the_horizon_and_counted_as_a_duplicate_after() -> None:
    h = Handlers()
    assert h.intake.claim(["ev-1", "ev-2", "ev-1"], topics.SCANS, 0, T0) == [0, 1]
    assert h.intake.claim(["ev-2", "ev-3"], topics.SCANS, 0, T0 + 1) == [1]
    assert h.metrics.registry.get_sample_value("hcs_duplicates_total", {"topic": "hcs.scans.v1"}) == 2
    assert h.intake.sweep(T0 + 48 * 3600 + 2, {0}) == 3  # past the horizon: forgotten


def test_a_refused_record_is_dead_lettered_once_however_often_it_is_read() -> None:
    h = Handlers()
    rejected = Rejected("NOT_JSON", "not JSON", b"{")
    h.intake.dead_letter(rejected, REF, T0)
    h.intake.dead_letter(rejected, REF, T0 + 5)  # read again after a crash
    (letter,) = h.out.sent[topics.DLQ.name]
    assert (letter["source_topic"], letter["partition"], letter["offset"], letter["reason"]) == (
        "hcs.scans.v1", 3, 41, "NOT_JSON")


def test_repeats_within_the_dedup_window_fold_into_the_next_alert_and_idle_memos_are_swept() -> None:
    h = Handlers()
    minute = DistrictMinute()

    def seen(event_id: str, at: float) -> None:
        draft = AlertDraft("KEY_PERSON_DETECTED", "critical", "KEY_PERSON_DETECTED|p|venue-1", "330106", "venue-1",
                           "v1", checkpoint_id="cp-1", person_ref="p" * 64, reasons=("HEALTH_CODE_RED",))
        h.alerts.raise_alert(draft, event_id, at, 30, 0, minute)

    seen("ev-1", T0)
    seen("ev-2", T0 + 60)  # folded
    seen("ev-3", T0 + 31 * 60)  # the window is over: emitted with the repeat
    alerts = h.out.alerts("KEY_PERSON_DETECTED")
    assert [(a["count"], a["event_ids"]) for a in alerts] == [(1, ["ev-1"]), (2, ["ev-2", "ev-3"])]
    assert minute.alerts["KEY_PERSON_DETECTED"] == 2
    assert h.alerts.sweep(T0 + 31 * 60 + 48 * 3600 - 1, {0}) == 0
    assert h.alerts.sweep(T0 + 31 * 60 + 48 * 3600 + 1, {0}) == 1
