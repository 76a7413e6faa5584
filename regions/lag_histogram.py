"""A replication pipeline's lag as a histogram of fixed buckets, counted since it started.

A figure per status poll (the p99 of the last 30 s, regions.replication_rules.LagStats) is
"the lag now"; a percentile over a stretch of time (a drill's steady phase) is not the
percentile of such figures: the p99 of polled p99s is about the worst 30 s window, taken
again at every poll. Counts are what can be subtracted: the histogram at the end of the
stretch minus the histogram at its start holds exactly the changes written in between (as a
Prometheus histogram does for histogram_quantile over a range). A percentile read from it
is the upper bound of the bucket that holds it: never below the true figure, at most one
bucket (10 ms up to a second) above.

Wire shape (a pipeline's status, `hemisphere up`'s /status): {"le_ms": [bounds...],
"counts": [per bucket..., overflow], "sum_ms": total, "since": epoch seconds}: one more
count than bounds, the last for lags above the last bound; `since` is when counting began.
The replicator's /metrics gives the same as a Prometheus histogram.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

# 10 ms steps up to a second (where every target of the global preset lies), then coarser
# up to the five minutes of an outage.
BOUNDS_MS: Final[tuple[int, ...]] = (
    *range(10, 1001, 10),
    1_500,
    2_000,
    3_000,
    5_000,
    10_000,
    30_000,
    60_000,
    300_000,
)


class LagHistogram:
    def __init__(self, bounds_ms: Sequence[int] = BOUNDS_MS, *, since: float | None = None) -> None:
        if list(bounds_ms) != sorted(set(bounds_ms)) or not bounds_ms:
            raise ValueError("bounds must be increasing")
        self.bounds_ms = tuple(bounds_ms)
        self.counts = [0] * (len(self.bounds_ms) + 1)
        self.sum_ms = 0.0
        # When counting began (epoch seconds): two readings of one run of counts have the
        # same, a restarted pipeline's readings another.
        self.since = time.time() if since is None else since

    def record(self, seconds: float) -> None:
        # A bucket holds the lags up to and including its bound (Prometheus's `le`).
        self.counts[bisect.bisect_left(self.bounds_ms, seconds * 1000.0)] += 1
        self.sum_ms += seconds * 1000.0

    def as_json(self) -> dict[str, Any]:
        return {
            "le_ms": list(self.bounds_ms),
            "counts": list(self.counts),
            "sum_ms": round(self.sum_ms, 3),
            "since": self.since,
        }


def counts_between(start: Any, end: Any) -> list[int] | None:
    """The counts of the changes recorded between two wire histograms of one pipeline, or
    None when they cannot be subtracted: a missing or malformed one, other bounds, or counts
    begun anew in between (the pipeline restarted: another `since`, or a count went down)."""
    if not (_valid(start) and _valid(end)) or start["le_ms"] != end["le_ms"]:
        return None
    if start.get("since") != end.get("since"):
        return None
    between = [b - a for a, b in zip(start["counts"], end["counts"], strict=True)]
    return None if any(n < 0 for n in between) else between


def percentile_ms(bounds_ms: Sequence[float], counts: Sequence[int], q: float) -> float | None:
    """The upper bound of the bucket holding the q-th percentile of `counts`; None when there
    is no change, or when it lies in the overflow bucket (above every bound)."""
    total = sum(counts)
    if total == 0:
        return None
    rank = max(1, math.ceil(q / 100 * total))
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return float(bounds_ms[index]) if index < len(bounds_ms) else None
    return None


def percentile_between(start: Any, end: Any, q: float) -> tuple[list[int] | None, float | None]:
    """The counts between two wire histograms of one pipeline (counts_between) and the q-th
    percentile of them (percentile_ms; None when they cannot be read or none lies below the
    last bound)."""
    counts = counts_between(start, end)
    if counts is None:
        return None, None
    return counts, percentile_ms(end["le_ms"], counts, q)


def _valid(histogram: Any) -> bool:
    if not isinstance(histogram, Mapping):
        return False
    bounds, counts = histogram.get("le_ms"), histogram.get("counts")
    return (
        isinstance(bounds, list)
        and isinstance(counts, list)
        and len(counts) == len(bounds) + 1
        and all(isinstance(n, int) for n in counts)
    )
