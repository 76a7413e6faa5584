"""The timeline of a drill, assembled from what it observed (pure).

One `Fault` per region the drill stopped. Its moments, each the first observation of it:

    killed            POST /regions/R/stop was sent
    detected          /status first reports R unhealthy (the health checks noticed)
    traffic moved     R's own location is first served by another region (a probe)
    read-only         every location has seen a checkout answered ReadOnlyRegion (primary loss)
    promoted          POST /regions/S/promote answered: S accepts writes (or, when its answer
                      was an error, /status first names S primary)
    first write       the first checkout sent after the kill that was acknowledged
    restarted         POST /regions/R/start was sent
    back              R's own location is served by R again
    resynced          R, back, holds the latest acknowledged orders that are final in the
                      primary as the primary does (same status and version: ResyncCheck)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hemisphere.drill.records import Action, Observations, Request
from hemisphere.drill.status import region_entry

READ_ONLY_ERROR = "ReadOnlyRegion"


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    at: float
    region: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Fault:
    scenario: str  # secondary-loss | primary-loss
    region: str
    killed: float
    detected: float | None = None
    traffic_moved: float | None = None
    read_only: float | None = None
    read_only_locations: int = 0
    promoted_region: str | None = None
    promote_requested: float | None = None
    promoted: float | None = None
    first_write: float | None = None
    restarted: float | None = None
    back: float | None = None
    resynced: float | None = None
    # Where this fault's effects end: the next fault's kill, or the end of the run.
    until: float = 0.0
    # Control actions that failed: (name, region, when it answered, why).
    failed_actions: tuple[tuple[str, str, float, str], ...] = ()

    def events(self) -> list[Event]:
        named: list[tuple[str, float | None, str, str]] = [
            ("kill", self.killed, self.region, self.scenario),
            ("detected", self.detected, self.region, "health checks report it unhealthy"),
            ("traffic moved", self.traffic_moved, self.region, "its location served elsewhere"),
            (
                "read-only entered",
                self.read_only,
                self.region,
                f"{self.read_only_locations} location(s) saw ReadOnlyRegion",
            ),
            ("promote sent", self.promote_requested, self.promoted_region or "", ""),
            ("promoted", self.promoted, self.promoted_region or "", "accepts writes"),
            ("first write accepted", self.first_write, self.promoted_region or "", ""),
            ("restart sent", self.restarted, self.region, ""),
            ("region back", self.back, self.region, "its location served by it again"),
            ("resynced", self.resynced, self.region, "its copy of the latest orders equal"),
        ]
        named += [
            (f"{name} FAILED", at, region, why) for name, region, at, why in self.failed_actions
        ]
        events = [Event(name, at, region, detail) for name, at, region, detail in named if at]
        return sorted(events, key=lambda event: event.at)


def assemble(observations: Observations) -> list[Fault]:
    """One Fault per stop action, in order."""
    actions = sorted(observations.actions, key=lambda action: action.requested)
    stops = [action for action in actions if action.name == "stop" and action.ok]
    if not stops:
        return []
    faults = []
    for index, stop in enumerate(stops):
        until = stops[index + 1].requested if index + 1 < len(stops) else observations.ended
        window = [a for a in actions if stop.requested <= a.requested < until]
        faults.append(_fault(observations, stop, window, until))
    return faults


def _fault(observations: Observations, stop: Action, window: list[Action], until: float) -> Fault:
    region, killed = stop.region, stop.requested
    attempts = [a for a in window if a.name == "promote"]
    promote = next((a for a in attempts if a.ok), None)
    failed = [a for a in window if not a.ok]
    target = promote.region if promote else (attempts[0].region if attempts else None)
    start = next((a for a in window if a.name == "start" and a.region == region), None)
    requests = [r for r in observations.requests if killed <= r.started < until]
    scenario = stop.scenario or ("primary-loss" if promote is not None else "secondary-loss")
    read_only, read_only_locations = (
        _read_only(requests, observations.locations) if scenario == "primary-loss" else (None, 0)
    )
    return Fault(
        scenario=scenario,
        region=region,
        killed=killed,
        detected=next(
            (
                poll.at
                for poll in observations.status
                if killed <= poll.at < until
                and poll.status is not None
                and region_entry(poll.status, region).get("health") not in (None, "healthy")
            ),
            None,
        ),
        traffic_moved=_first_probe(requests, region, lambda served: served != region),
        read_only=read_only,
        read_only_locations=read_only_locations,
        promoted_region=target,
        promote_requested=attempts[0].requested if attempts else None,
        promoted=(
            promote.answered
            if promote
            else _primary_seen(observations, target, attempts[0].requested, until)
            if target and attempts
            else None
        ),
        first_write=(
            next((r.ended for r in _by_end(requests, "checkout") if r.ok), None)
            if scenario == "primary-loss"
            else None
        ),
        restarted=start.requested if start else None,
        back=(
            _first_probe(
                [r for r in requests if r.started >= start.requested], region, region.__eq__
            )
            if start
            else None
        ),
        resynced=_resynced(observations, region, start.requested, until) if start else None,
        until=until,
        failed_actions=tuple((a.name, a.region, a.answered, a.detail) for a in failed),
    )


def _by_end(requests: list[Request], kind: str) -> list[Request]:
    return sorted((r for r in requests if r.kind == kind), key=lambda r: r.ended)


def _first_probe(
    requests: list[Request], location: str, served_by: Callable[[str], bool]
) -> float | None:
    """When the location named `location` was first answered by a region `served_by` accepts."""
    for probe in _by_end(requests, "probe"):
        if probe.location == location and probe.ok and probe.region and served_by(probe.region):
            return probe.ended
    return None


def _read_only(requests: list[Request], locations: tuple[str, ...]) -> tuple[float | None, int]:
    """When the last location to do so saw its first ReadOnlyRegion answer."""
    first: dict[str, float] = {}
    for request in _by_end(requests, "checkout"):
        if request.error == READ_ONLY_ERROR and request.location in locations:
            first.setdefault(request.location, request.ended)
    return (max(first.values()) if first else None), len(first)


def _primary_seen(
    observations: Observations, region: str, since: float, until: float
) -> float | None:
    """A promotion whose answer was lost (a timeout, an error after the work was done) still
    happened if /status names the region primary."""
    return next(
        (
            poll.at
            for poll in observations.status
            if since <= poll.at < until and poll.status and poll.status.get("primary") == region
        ),
        None,
    )


def _resynced(observations: Observations, region: str, since: float, until: float) -> float | None:
    return next(
        (
            check.at
            for check in observations.resync_checks
            if check.region == region and check.equal and since <= check.at < until
        ),
        None,
    )


def all_events(faults: list[Fault]) -> list[Event]:
    return sorted((event for fault in faults for event in fault.events()), key=lambda e: e.at)
