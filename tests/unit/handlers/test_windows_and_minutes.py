"""Three 100% windows and district minutes, driven with plain values."""

from __future__ import annotations

from tests.unit.handlers.harness import Handlers

T0 = 1_652_140_800.0
PARAMS = Handlers().policy.params(T0, "330106", "mall")[1]


def test_a_window_with_a_miss_closes_a_grace_after_its_end_with_one_violation_counted_in_its_minute() -> None:
    h = Handlers()
    window = h.windows.window("cp-1", T0, 600, "330106", "venue-1", "mall", "v1", PARAMS, 0, T0)
    window.counts.add_scan(None, True)  # no temperature
    window.save()
    h.stream_time(T0 + 600 + 119, T0 + 719)
    assert h.windows.close(T0 + 719) == 0
    h.stream_time(T0 + 720, T0 + 720)
    assert h.windows.close(T0 + 720) == 1
    (violation,) = h.out.alerts("THREE_100_VIOLATION")
    assert violation["details"]["temperature_misses"] == 1
    late = h.windows.window("cp-1", T0, 600, "330106", "venue-1", "mall", "v1", PARAMS, 0, T0 + 720)
    assert late.closed  # a closed window does not reopen
    # Its outcomes were counted in the minute it ended in (08:09), sent once that minute is over.
    h.stream_time(T0 + 900, T0 + 900)
    assert h.minutes.close(T0 + 900) >= 1
    (part,) = [p for p in h.out.partials if p["at"] == T0 + 540]
    assert part["key"] == "330106" and part["part"]["three100"]["temperature"] == [0, 1]
    assert h.out.watermarks[-1] == {"source": 0, "through": T0 + 720}


def test_a_scan_of_a_minute_already_sent_counts_in_the_earliest_open_one() -> None:
    h = Handlers()
    h.minutes.minute(0, "330106", T0)
    h.stream_time(T0 + 300, T0 + 300)
    h.minutes.close(T0 + 300)
    minute, reattributed = h.minutes.minute(0, "330106", T0 + 10)
    assert reattributed and minute is h.minutes.minute(0, "330106", T0 + 10)[0]  # the same open minute
