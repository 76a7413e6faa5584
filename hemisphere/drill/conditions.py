"""What the runner waits for, as questions about the observations so far (pure): has a
location been answered by another region, has every location seen ReadOnlyRegion, was a write
accepted, is every region healthy."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from hemisphere.drill.records import Observations
from hemisphere.drill.status import region_entry
from hemisphere.drill.timeline import READ_ONLY_ERROR


def all_healthy(observations: Observations, regions: Iterable[str]) -> bool:
    """The latest /status reports every region healthy."""
    polls = observations.status
    status = polls[-1].status if polls else None
    return status is not None and all(
        region_entry(status, region).get("health") == "healthy" for region in regions
    )


def served(
    observations: Observations, location: str, since: float, accept: Callable[[str], bool]
) -> bool:
    """A probe of `location` sent since `since` was answered by a region `accept` takes."""
    return any(
        r.kind == "probe"
        and r.location == location
        and r.started >= since
        and r.ok
        and r.region is not None
        and accept(r.region)
        for r in reversed(observations.requests)
    )


def read_only_everywhere(observations: Observations, since: float) -> bool:
    """Every location got a ReadOnlyRegion answer to a checkout sent since `since`."""
    seen = {
        r.location
        for r in observations.requests
        if r.kind == "checkout" and r.started >= since and r.error == READ_ONLY_ERROR
    }
    return seen >= set(observations.locations)


def write_accepted(observations: Observations, since: float) -> bool:
    """A checkout sent since `since` was acknowledged."""
    return any(
        r.kind == "checkout" and r.ok and r.started >= since
        for r in reversed(observations.requests)
    )
