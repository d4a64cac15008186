"""Silent checkpoints, driven with plain values."""

from __future__ import annotations

from tests.unit.handlers.harness import Handlers

T0 = 1_652_140_800.0  # 2022-05-10T08:00:00+08:00


def test_silent_on_both_clocks_fires_once_and_a_report_resolves_it() -> None:
    h = Handlers()
    h.checkpoints.reported("cp-1", T0, T0, T0, "330106", "venue-1", "mall", "v1", 0)
    h.stream_time(T0 + 599, T0 + 599)
    assert h.checkpoints.check(T0 + 599) == 0  # 9:59 quiet
    h.stream_time(T0 + 600, T0 + 600)
    assert h.checkpoints.check(T0 + 600) == 1
    assert h.checkpoints.check(T0 + 601) == 0  # once
    (firing,) = h.out.alerts("CHECKPOINT_SILENT")
    assert (firing["status"], firing["details"]["silent_since"]) == ("firing", "2022-05-10T08:00:00.000+08:00")
    h.checkpoints.reported("cp-1", T0 + 700, T0 + 700, T0 + 700, "330106", "venue-1", "mall", "v1", 0)
    assert [a["status"] for a in h.out.alerts("CHECKPOINT_SILENT")] == ["firing", "resolved"]


def test_a_late_upload_keeps_a_checkpoint_alive_until_the_upload_clock_says_otherwise() -> None:
    h = Handlers()
    # Scanned at 08:00, uploaded at 08:20 (the device's buffer), with the stream at 08:20.
    h.checkpoints.reported("cp-1", T0, T0, T0 + 1200, "330106", "venue-1", "mall", "v1", 0)
    h.stream_time(T0 + 1200, T0 + 1200)
    assert h.checkpoints.check(T0 + 1200) == 0
    h.stream_time(T0 + 1800, T0 + 1800)  # ten minutes after the upload
    assert h.checkpoints.check(T0 + 1800) == 1


def test_a_status_from_before_upload_times_were_kept_is_judged_by_event_time() -> None:
    h = Handlers()
    h.state.set("c|cp-old", {"seen": T0, "silent": False, "district": "330106", "venue_id": "venue-1",
                             "venue_type": "mall"}, 0)
    h.stream_time(T0 + 600, T0 + 600)
    assert h.checkpoints.check(T0 + 600) == 1
