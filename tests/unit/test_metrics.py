"""The worker's metric families: Prometheus exposition of counters and histograms updated in place."""

from __future__ import annotations

import pytest

from streams.metrics import LAG_BUCKETS, Metrics


def test_counters_are_exposed_per_label_set_with_the_total_suffix() -> None:
    m = Metrics()
    m.scans("330106", "school", "ALLOW").inc()
    m.scans("330106", "school", "ALLOW").inc()
    m.entries("330102", "market").inc(40)
    text = m.exposition().decode()
    assert 'hcs_scans_total{decision="ALLOW",district="330106",venue_type="school"} 2.0' in text
    assert 'hcs_entries_total{district="330102",venue_type="market"} 40.0' in text
    assert "# TYPE hcs_scans_total counter" in text


def test_histogram_buckets_are_cumulative_and_inclusive_of_their_bound() -> None:
    m = Metrics()
    lag = m.lag("330106")
    for value in (0.05, 0.051, 7.0, 10**6):
        lag.observe(value)

    def bucket(le: str) -> float | None:
        return m.registry.get_sample_value("hcs_event_lag_seconds_bucket", {"district": "330106", "le": le})

    assert bucket("0.05") == 1.0  # a value on a bound counts in that bucket
    assert bucket("0.1") == 2.0
    assert bucket("5.0") == 2.0 and bucket("10.0") == 3.0
    assert bucket(str(LAG_BUCKETS[-1])) == 3.0 and bucket("+Inf") == 4.0
    assert m.registry.get_sample_value("hcs_event_lag_seconds_count", {"district": "330106"}) == 4.0
    assert m.registry.get_sample_value("hcs_event_lag_seconds_sum", {"district": "330106"}) == pytest.approx(
        0.05 + 0.051 + 7.0 + 10**6)


def test_many_observations_at_once_count_as_each_one_would() -> None:
    one, many = Metrics(), Metrics()
    for value in (0.05, 0.051, 7.0, 7.0, 7.0):
        one.lag("330106").observe(value)
    many.lag("330106").observe_all([0.05, 0.051])
    many.lag("330106").observe_many(7.0, 3)
    assert one.exposition() == many.exposition()


def test_an_unlabelled_histogram_is_exposed_before_any_observation_and_wrong_labels_are_refused() -> None:
    m = Metrics()
    assert m.registry.get_sample_value("hcs_scan_processing_seconds_count") == 0.0
    with pytest.raises(ValueError, match="takes labels"):
        m.scans("330106")
