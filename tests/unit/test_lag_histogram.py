"""A pipeline's lag histogram (regions.lag_histogram): buckets, differences, percentiles."""

from __future__ import annotations

import pytest

from regions.lag_histogram import BOUNDS_MS, LagHistogram, counts_between, percentile_ms
from regions.replication_rules import LagStats


def test_a_lag_counts_in_the_first_bucket_whose_bound_holds_it() -> None:
    histogram = LagHistogram((10, 20, 50))
    for seconds in (0.0, 0.010, 0.0101, 0.020, 0.049, 0.051, 3.0):
        histogram.record(seconds)
    assert histogram.as_json()["le_ms"] == [10, 20, 50]
    assert histogram.as_json()["counts"] == [2, 2, 1, 2]
    assert round(histogram.as_json()["sum_ms"], 1) == 3140.1


def test_the_default_bounds_are_10_ms_to_a_second_then_coarser() -> None:
    assert BOUNDS_MS[:3] == (10, 20, 30) and 1000 in BOUNDS_MS and BOUNDS_MS[-1] == 300_000
    with pytest.raises(ValueError):
        LagHistogram((20, 10))


def test_the_changes_between_two_readings_are_their_difference() -> None:
    histogram = LagHistogram((10, 20))
    histogram.record(0.005)
    start = histogram.as_json()
    histogram.record(0.015)
    histogram.record(0.5)
    assert counts_between(start, histogram.as_json()) == [0, 1, 1]


def test_readings_that_cannot_be_subtracted_give_none() -> None:
    before, after = LagHistogram((10, 20), since=1.0), LagHistogram((10, 20), since=1.0)
    before.record(0.005)  # a count went down
    assert counts_between(before.as_json(), after.as_json()) is None
    # The pipeline restarted: its counts began again, even where they are higher now.
    restarted = LagHistogram((10, 20), since=2.0)
    for _ in range(3):
        restarted.record(0.005)
    assert counts_between(before.as_json(), restarted.as_json()) is None
    assert counts_between(before.as_json(), LagHistogram((10, 30)).as_json()) is None
    assert counts_between(None, after.as_json()) is None
    assert counts_between({"le_ms": [10], "counts": [1]}, after.as_json()) is None


def test_a_percentile_is_the_upper_bound_of_its_bucket() -> None:
    bounds = (10, 20, 50)
    assert percentile_ms(bounds, [0, 99, 1, 0], 99) == 20.0
    assert percentile_ms(bounds, [0, 98, 2, 0], 99) == 50.0
    assert percentile_ms(bounds, [0, 0, 0, 0], 99) is None
    assert percentile_ms(bounds, [0, 0, 0, 5], 50) is None  # above every bound


def test_lag_stats_count_every_sample_in_their_histogram() -> None:
    lag = LagStats(window=2)
    for seconds in (0.015, 0.025, 0.035):
        lag.record(seconds)
    # The window keeps two samples; the histogram counts all three.
    assert len(lag.samples()) == 2
    assert sum(lag.histogram.as_json()["counts"]) == 3
