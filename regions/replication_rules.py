"""The global table stand-in's rules, pure (regions.replication runs them): what a region
sends on, last writer wins by version, origin marks, and the lag figures.

- Last writer wins by the item's `version`: a put lands only where the replica has no item or
  an older version (`attribute_not_exists(pk) OR version < :v`), so replaying a record, or a
  record arriving after a newer one, changes nothing: the pipelines may send anything twice.
- A replicated put carries `aws:rep:updateregion` (where the change was made) and
  `aws:rep:updatetime` (when). A record whose new image carries another region's mark came
  here by replication and is not sent on: no loops. Local writers put whole items, so a local
  change of a replicated item drops the mark and is sent again.
- A removal is sent on whatever its origin (its old image tells who made the item, not who
  removed it); it deletes only an item whose version is not newer than the removed one, and a
  removal of an absent item writes nothing, so removals die out after one round.
- Items without a `version` are this region's own bookkeeping (leases, checkpoints): never
  replicated.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from regions.lag_histogram import LagHistogram
from regions.ports import ORIGIN_REGION, ORIGIN_TIME, StreamRecord, WireItem


@dataclass(frozen=True, slots=True)
class Put:
    key: WireItem
    item: WireItem
    version: int
    created_at: float


@dataclass(frozen=True, slots=True)
class Delete:
    key: WireItem
    version: int
    created_at: float


Action = Put | Delete


def version_of(image: WireItem) -> int | None:
    """The item's `version`, or None when it has none (not a replicated kind of item)."""
    value = image.get("version")
    if value is None or "N" not in value:
        return None
    try:
        return int(value["N"])
    except ValueError:
        return None


def origin_of(image: WireItem) -> str | None:
    value = image.get(ORIGIN_REGION)
    return str(value["S"]) if value is not None and "S" in value else None


def marked(image: WireItem, origin: str, at: float) -> dict[str, Mapping[str, Any]]:
    """`image` as written to another region: marked with where and when it was made."""
    return {**image, ORIGIN_REGION: {"S": origin}, ORIGIN_TIME: {"N": f"{at:.3f}"}}


def replication_action(record: StreamRecord, region: str) -> Action | None:
    """What `region`'s replicator sends to the other regions for `record`, if anything."""
    if record.new_image is None:
        if record.old_image is None:
            return None
        version = version_of(record.old_image)
        if version is None:
            return None
        return Delete(record.key, version, record.created_at)
    version = version_of(record.new_image)
    if version is None:
        return None
    origin = origin_of(record.new_image)
    if origin is not None and origin != region:
        return None  # it came here by replication: its own region sends it everywhere
    return Put(
        record.key, marked(record.new_image, region, record.created_at), version, record.created_at
    )


def _key_of(key: WireItem) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, repr(sorted(value.items()))) for name, value in key.items()))


def latest_per_key(actions: Iterable[Action]) -> list[Action]:
    """The last action of each item, in stream order: one write per item and batch (a saga's
    steps change one order several times in a row)."""
    latest: dict[tuple[tuple[str, str], ...], Action] = {}
    for action in actions:
        key = _key_of(action.key)
        latest.pop(key, None)  # re-insert: keep the order of the last occurrence
        latest[key] = action
    return list(latest.values())


class LagStats:
    """Replication lag of one target: the time from a change in the source to its write in
    the target, over the last `window` changes."""

    def __init__(
        self,
        window: int = 4096,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        recent_seconds: float = 30.0,
    ) -> None:
        # "The lag now" (as_ms' recent_p99, what `regions status` shows): CloudWatch's
        # ReplicationLatency is a figure per period too.
        self.recent_seconds = recent_seconds
        self._samples: deque[float] = deque(maxlen=window)
        # When each sample was taken: "the lag now" is the samples of the last seconds, not
        # of the last `window` changes (an outage hours ago says nothing of now).
        self._taken: deque[float] = deque(maxlen=window)
        self._monotonic = monotonic
        self.count = 0
        self.last: float | None = None
        # Every sample since start, counted: a percentile over any stretch of time is the
        # difference of two of its readings (regions.lag_histogram).
        self.histogram = LagHistogram()

    def record(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        self.histogram.record(seconds)
        self._samples.append(seconds)
        self._taken.append(self._monotonic())
        self.last = seconds
        self.count += 1

    def recent_percentile(self, q: float, within: float) -> float | None:
        """The q-th percentile of the samples taken in the last `within` seconds."""
        since = self._monotonic() - within
        recent = sorted(s for s, at in zip(self._samples, self._taken, strict=True) if at >= since)
        if not recent:
            return None
        return recent[min(len(recent) - 1, max(0, math.ceil(q / 100 * len(recent)) - 1))]

    def percentile(self, q: float) -> float | None:
        if not self._samples:
            return None
        ordered = sorted(self._samples)
        index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
        return ordered[index]

    def samples(self) -> list[float]:
        return list(self._samples)

    def as_ms(self) -> dict[str, float | int | None]:
        def ms(value: float | None) -> float | None:
            return None if value is None else round(value * 1000, 1)

        return {
            "last": ms(self.last),
            "p50": ms(self.percentile(50)),
            "p99": ms(self.percentile(99)),
            "max": ms(max(self._samples, default=None)),
            # None when nothing was replicated in the period: an idle pipeline has no lag to
            # show, and a p99 kept from an outage long past would say it is behind.
            "recent_p99": ms(self.recent_percentile(99, self.recent_seconds)),
            "recent_seconds": self.recent_seconds,
            "samples": self.count,
        }
