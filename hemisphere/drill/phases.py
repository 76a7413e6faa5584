"""Latency and errors per phase of a drill (pure).

Phases follow the faults: `before` the first kill; `during` a fault from its kill until its
region serves its location again (or the next kill); `after` from then on. With several faults
the phase names carry the scenario (`during primary-loss`)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hemisphere.drill.records import Request
from hemisphere.drill.timeline import Fault


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    start: float
    end: float

    def holds(self, at: float) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class LatencySummary:
    count: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True, slots=True)
class ErrorWindow:
    """Errors one location's users saw during one fault, per kind of request."""

    location: str
    kind: str
    by_type: dict[str, int]
    first: float
    last: float
    # The first outage: from the first error to the answer of the last error before a request
    # of this kind succeeded again (what "users saw errors for" means; later errors, e.g. from
    # an overloaded machine, count above but not here).
    burst_s: float = 0.0

    @property
    def seconds(self) -> float:
        return self.last - self.first


@dataclass(frozen=True, slots=True)
class FaultErrors:
    fault: Fault
    windows: list[ErrorWindow] = field(default_factory=list)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0 < q ≤ 100), nearest rank: a value that was observed."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def phases(started: float, ended: float, faults: Sequence[Fault]) -> list[Phase]:
    if not faults:
        return [Phase("steady", started, ended)]
    several = len(faults) > 1
    scenarios = [fault.scenario for fault in faults]
    result = [Phase("before", started, faults[0].killed)]
    for index, fault in enumerate(faults, start=1):
        suffix = f" {fault.scenario}" if several else ""
        if scenarios.count(fault.scenario) > 1:
            suffix += f" {index}"  # phase names key the tables: each must be its own
        back = fault.back if fault.back is not None else fault.until
        result.append(Phase(f"during{suffix}", fault.killed, back))
        if back < fault.until:
            result.append(Phase(f"after{suffix}", back, fault.until))
    return result


def latency_by_phase(
    requests: Iterable[Request], all_phases: Sequence[Phase], kind: str = "read"
) -> dict[str, dict[str, LatencySummary]]:
    """{location: {phase: summary}} of the successful requests' latencies; errors counted."""
    latencies: dict[tuple[str, str], list[float]] = defaultdict(list)
    errors: dict[tuple[str, str], int] = defaultdict(int)
    locations: list[str] = []
    for request in requests:
        if request.kind != kind:
            continue
        phase = next((p for p in all_phases if p.holds(request.started)), None)
        if phase is None:
            continue
        if request.location not in locations:
            locations.append(request.location)
        key = (request.location, phase.name)
        if request.ok:
            latencies[key].append(request.latency_ms)
        else:
            errors[key] += 1
    return {
        location: {
            phase.name: LatencySummary(
                count=len(latencies[(location, phase.name)]) + errors[(location, phase.name)],
                errors=errors[(location, phase.name)],
                p50_ms=percentile(latencies[(location, phase.name)], 50),
                p99_ms=percentile(latencies[(location, phase.name)], 99),
            )
            for phase in all_phases
        }
        for location in sorted(locations)
    }


def error_windows(requests: Iterable[Request], fault: Fault) -> FaultErrors:
    """Per location and kind of request: the errors sent during the fault, by errorType, and
    the span from the first failing request's start to the last one's answer."""
    grouped: dict[tuple[str, str], list[Request]] = defaultdict(list)
    for request in requests:
        if fault.killed <= request.started < fault.until:
            grouped[(request.location, request.kind)].append(request)
    windows = []
    for (location, kind), sent in sorted(grouped.items()):
        failed = [r for r in sent if not r.ok]
        if not failed:
            continue
        by_type: dict[str, int] = defaultdict(int)
        for request in failed:
            by_type[request.error or "?"] += 1
        windows.append(
            ErrorWindow(
                location=location,
                kind=kind,
                by_type=dict(by_type),
                first=min(r.started for r in failed),
                last=max(r.ended for r in failed),
                burst_s=_first_burst(sent),
            )
        )
    return FaultErrors(fault, windows)


def _first_burst(sent: list[Request]) -> float:
    ordered = sorted(sent, key=lambda r: r.started)
    first = next(r for r in ordered if not r.ok)
    recovered = next((r.started for r in ordered if r.ok and r.started > first.started), None)
    last = max(
        r.ended for r in ordered if not r.ok and (recovered is None or r.started < recovered)
    )
    return last - first.started
