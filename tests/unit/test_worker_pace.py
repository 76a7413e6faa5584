"""workflows.queue_worker.Pace: when the one worker loop receives again after outages."""

from __future__ import annotations

from domain.backoff import Backoff
from workflows.queue_worker import Pace

CEILING = Backoff(1.0, 4.0, random=lambda: 1.0)  # the jitter at its top: delay == ceiling


def test_a_calm_round_receives_again_at_once() -> None:
    pace = Pace(CEILING)
    assert [pace.next_round() for _ in range(3)] == [0.0, 0.0, 0.0]


def test_rounds_with_an_outage_back_off_more_each_time_and_a_calm_one_resets() -> None:
    pace = Pace(CEILING)
    waits = []
    for _ in range(4):
        pace.outage()
        pace.outage()  # several in one round count once
        waits.append(pace.next_round())
    assert waits == [1.0, 2.0, 4.0, 4.0] and pace.rounds_in_a_row == 4

    assert pace.next_round() == 0.0 and pace.rounds_in_a_row == 0
    pace.outage()
    assert pace.next_round() == 1.0
