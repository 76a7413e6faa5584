"""domain.backoff: the one retry policy of the workers and the outbox relay."""

from __future__ import annotations

import pytest

from domain.backoff import Backoff


def test_the_ceiling_doubles_from_the_initial_delay_up_to_the_cap() -> None:
    backoff = Backoff(0.5, 30.0)
    assert [backoff.ceiling(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


def test_no_failure_means_no_wait() -> None:
    assert Backoff(0.5, 30.0).delay(0) == 0.0


def test_the_jitter_spans_the_upper_half_of_the_ceiling() -> None:
    assert Backoff(1.0, 8.0, random=lambda: 0.0).delay(3) == 2.0
    assert Backoff(1.0, 8.0, random=lambda: 0.999999).delay(3) == pytest.approx(4.0)
    delays = [Backoff(0.1, 1.0).delay(n) for n in range(1, 10)]
    assert 0.05 <= delays[0] <= 0.1
    assert all(d <= 1.0 for d in delays) and delays[-1] >= 0.5


def test_an_outage_of_any_length_stays_at_the_cap() -> None:
    # 2.0 ** 1100 would overflow a float: the doublings stop long before that.
    assert Backoff(0.2, 30.0).ceiling(5000) == 30.0


@pytest.mark.parametrize(("initial", "maximum"), [(0, 1), (-1, 1), (2, 1)])
def test_a_backoff_that_never_waits_or_shrinks_is_refused(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError):
        Backoff(initial, maximum)
