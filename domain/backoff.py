"""How long a loop waits before it tries again after failures in a row: the one backoff
policy of the workers (workflows.worker) and of the outbox relay (projections.relay).

Capped exponential with "equal jitter": the n-th failure in a row waits between half and all
of min(maximum, initial * 2^(n-1)). The ceiling doubles so that an outage costs few requests;
the cap bounds how late a recovery is noticed; the jitter keeps processes that failed
together (every worker of a region when SQS or PostgreSQL blinks) from retrying in step.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

# 2^60 times any initial delay is past any cap: failures beyond this add nothing, and the
# power would overflow a float after ~1000 failures in a row (hours of outage at the cap).
_MAX_DOUBLINGS = 60


@dataclass(frozen=True, slots=True)
class Backoff:
    initial: float  # the ceiling of the first retry's wait, seconds
    maximum: float  # the ceiling's cap, seconds
    # A number in [0, 1): the jitter's source (tests pass a constant).
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError(
                f"a backoff needs 0 < initial <= maximum, not {self.initial}, {self.maximum}"
            )

    def ceiling(self, failures: int) -> float:
        """The longest wait after `failures` failures in a row (none: no wait)."""
        if failures < 1:
            return 0.0
        return min(self.maximum, self.initial * 2.0 ** min(failures - 1, _MAX_DOUBLINGS))

    def delay(self, failures: int) -> float:
        """The wait after `failures` failures in a row: between half and all of the ceiling."""
        return self.ceiling(failures) * (0.5 + self.random() / 2)
