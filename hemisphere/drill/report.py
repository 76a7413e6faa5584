"""The drill's report: built from a run's observations (pure), printed as a timeline and
tables, written as JSON. Times are offsets in seconds from the start of the run."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from hemisphere.drill.phases import (
    ErrorWindow,
    LatencySummary,
    Phase,
    error_windows,
    latency_by_phase,
    percentile,
    phases,
)
from hemisphere.drill.propagation import (
    DeliverySummary,
    Reconnection,
    delivery_by_location,
    reconnections,
)
from hemisphere.drill.records import Observations, Request
from hemisphere.drill.rpo import RecoveryPoint, recovery_point
from hemisphere.drill.status import (
    dynamodb_lag_histograms,
    dynamodb_lags,
    last_before,
    postgres_lags,
)
from hemisphere.drill.timeline import Fault, assemble
from regions.lag_histogram import percentile_between
from regions.latency import LatencyMatrix


@dataclass(frozen=True, slots=True)
class EventRow:
    name: str
    at_s: float
    region: str
    detail: str


@dataclass(frozen=True, slots=True)
class PhaseRow:
    name: str
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class LagSummary:
    """From /status polls in one phase: every region's figures pooled."""

    dynamodb_p50_ms: float | None
    dynamodb_p99_ms: float | None
    postgres_p50_ms: float | None
    postgres_p99_ms: float | None
    # Per "source:target" pair (the status names the region that reports and the other), the
    # p99 of the changes written in the phase, from the pipeline's lag histogram at the
    # phase's start and end; the p99 of the polled figures where that cannot be read (a
    # pipeline that restarted in the phase, a status without histograms, a p99 above the
    # histogram's last bound).
    dynamodb_p99_by_pair_ms: dict[str, float] = field(default_factory=dict)
    # Which pairs' p99 are of the polled figures (each the p99 of the last 30 s or the age of
    # a change still waiting) rather than of the phase's changes.
    dynamodb_p99_polled_pairs: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FaultSummary:
    scenario: str
    region: str
    killed_s: float
    detected_after_s: float | None
    traffic_moved_after_s: float | None
    read_only_after_s: float | None
    read_only_locations: int
    promoted_region: str | None
    promote_to_first_write_s: float | None
    rto_s: float | None  # primary loss: kill → first write accepted
    back_after_restart_s: float | None
    resynced_after_restart_s: float | None
    errors: list[ErrorWindow]
    recovery_point: RecoveryPoint
    # What `hemisphere up` reported as lost when the region rejoined (its start answer).
    rejoin_lost_writes: Any = None


@dataclass(frozen=True, slots=True)
class BaselineRow:
    """One location's read p50 with regions (its edge) and without (the primary alone)."""

    location: str
    served_by: str
    rtt_ms: float  # to the region that serves it
    service_p50_ms: float | None  # that region's API read directly, no delay
    with_regions_p50_ms: float | None
    with_regions_p99_ms: float | None
    rtt_to_primary_ms: float
    without_regions_p50_ms: float | None
    without_regions_p99_ms: float | None
    # Errors by type of the baseline reads and of the direct (service time) reads.
    without_regions_errors: dict[str, int] = field(default_factory=dict)
    service_errors: dict[str, int] = field(default_factory=dict)

    @property
    def speedup(self) -> float | None:
        if not self.with_regions_p50_ms or self.without_regions_p50_ms is None:
            return None
        return self.without_regions_p50_ms / self.with_regions_p50_ms


@dataclass(frozen=True, slots=True)
class Report:
    scenario: str
    primary: str
    latency: str
    duration_s: float
    events: list[EventRow]
    phases: list[PhaseRow]
    reads: dict[str, dict[str, LatencySummary]]
    checkouts: dict[str, dict[str, LatencySummary]]
    lags: dict[str, LagSummary]
    faults: list[FaultSummary]
    deliveries: list[DeliverySummary]
    reconnections: list[Reconnection]
    baseline: list[BaselineRow]
    acknowledged: int
    data_equal: dict[str, str]
    options: dict[str, Any] = field(default_factory=dict)
    # The machine's 1-minute load average: at the start, its highest, at the end.
    load_average: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        for row, source in zip(document["baseline"], self.baseline, strict=True):
            row["speedup"] = source.speedup
        return document


def build_report(
    observations: Observations,
    baseline: list[Request],
    direct: list[Request],
    matrix: LatencyMatrix,
    scenario: str,
    options: dict[str, Any] | None = None,
) -> Report:
    start = observations.started
    faults = assemble(observations)
    steady = observations.steady_from if observations.steady_from is not None else start
    all_phases = phases(steady, observations.ended, faults)

    def offset(at: float) -> float:
        return round(at - start, 3)

    def maybe(at: float | None) -> float | None:
        return None if at is None else offset(at)

    events = sorted(
        (
            EventRow(e.name, round(e.at - start, 3), e.region, e.detail)
            for fault in faults
            for e in fault.events()
        ),
        key=lambda row: row.at_s,
    )
    before = all_phases[0]
    return Report(
        scenario=scenario,
        primary=observations.primary,
        latency=matrix.name,
        duration_s=round(observations.ended - start, 3),
        events=events,
        phases=[
            PhaseRow(p.name, round(p.start - start, 3), round(p.end - start, 3)) for p in all_phases
        ],
        reads=latency_by_phase(observations.requests, all_phases, "read"),
        checkouts=latency_by_phase(observations.requests, all_phases, "checkout"),
        lags={p.name: lag_summary(observations, p) for p in all_phases},
        faults=[_fault_summary(observations, fault, offset) for fault in faults],
        deliveries=delivery_by_location(observations.deliveries, observations.primary, before),
        reconnections=[
            Reconnection(r.location, r.region, offset(r.lost), maybe(r.established))
            for r in reconnections(observations.connections, faults)
        ],
        baseline=baseline_rows(observations, baseline, direct, matrix, before),
        acknowledged=len(observations.acknowledged),
        data_equal=dict(observations.data_equal),
        options=dict(options or {}),
        load_average=_load(observations),
    )


def _fault_summary(
    observations: Observations, fault: Fault, offset: Callable[[float], float]
) -> FaultSummary:
    def after(at: float | None, since: float | None) -> float | None:
        return None if at is None or since is None else round(at - since, 3)

    point = recovery_point(observations, fault)
    return FaultSummary(
        scenario=fault.scenario,
        region=fault.region,
        killed_s=offset(fault.killed),
        detected_after_s=after(fault.detected, fault.killed),
        traffic_moved_after_s=after(fault.traffic_moved, fault.killed),
        read_only_after_s=after(fault.read_only, fault.killed),
        read_only_locations=fault.read_only_locations,
        promoted_region=fault.promoted_region,
        promote_to_first_write_s=after(fault.first_write, fault.promote_requested),
        rto_s=after(fault.first_write, fault.killed),
        back_after_restart_s=after(fault.back, fault.restarted),
        resynced_after_restart_s=after(fault.resynced, fault.restarted),
        errors=[
            ErrorWindow(w.location, w.kind, w.by_type, offset(w.first), offset(w.last), w.burst_s)
            for w in error_windows(observations.requests, fault).windows
        ],
        recovery_point=point,
        rejoin_lost_writes=next(
            (
                a.answer.get("lost_writes")
                for a in observations.actions
                if a.name == "start"
                and a.region == fault.region
                and a.answer
                and fault.killed <= a.requested < fault.until
            ),
            None,
        ),
    )


def lag_summary(observations: Observations, phase: Phase) -> LagSummary:
    dynamodb: list[float] = []
    by_pair: dict[str, list[float]] = defaultdict(list)
    postgres: list[float] = []
    for poll in observations.status:
        if not phase.holds(poll.at):
            continue
        for region, other, lag in dynamodb_lags(poll.status):
            dynamodb.append(lag)
            by_pair[f"{region}:{other}"].append(lag)
        postgres += [lag for _, lag in postgres_lags(poll.status)]
    exact = phase_lag_p99_by_pair(observations, phase)
    polled = {
        pair: value
        for pair, lags in by_pair.items()
        if pair not in exact and (value := percentile(lags, 99)) is not None
    }
    return LagSummary(
        dynamodb_p50_ms=percentile(dynamodb, 50),
        dynamodb_p99_ms=percentile(dynamodb, 99),
        postgres_p50_ms=percentile(postgres, 50),
        postgres_p99_ms=percentile(postgres, 99),
        dynamodb_p99_by_pair_ms=dict(sorted({**polled, **exact}.items())),
        dynamodb_p99_polled_pairs=sorted(polled),
    )


def phase_lag_p99_by_pair(observations: Observations, phase: Phase) -> dict[str, float]:
    """Per pair, the p99 of the changes its pipeline wrote during `phase`: its histogram in
    the last poll of the phase minus the one in the last poll before it (or the phase's first
    when there is none before). A pair whose counts cannot be subtracted, or that wrote
    nothing in the phase, has no figure here."""
    start = last_before(observations.status, phase.start)
    first: dict[str, Any] = {}
    if start is not None:
        first = {f"{r}:{o}": h for r, o, h in dynamodb_lag_histograms(start.status)}
    last: dict[str, Any] = {}
    for poll in observations.status:
        if not phase.holds(poll.at):
            continue
        for region, other, histogram in dynamodb_lag_histograms(poll.status):
            pair = f"{region}:{other}"
            first.setdefault(pair, histogram)
            last[pair] = histogram
    result: dict[str, float] = {}
    for pair, end in last.items():
        _, p99 = percentile_between(first[pair], end, 99)
        if p99 is not None:
            result[pair] = p99
    return result


def baseline_rows(
    observations: Observations,
    baseline: list[Request],
    direct: list[Request],
    matrix: LatencyMatrix,
    phase: Phase,
) -> list[BaselineRow]:
    """Per location, in the `before` phase: reads through its edge, reads through the primary
    alone, and the service time of the region that served it (its API read directly)."""

    def p(requests: list[Request], location: str, q: float) -> float | None:
        return percentile(
            [
                r.latency_ms
                for r in requests
                if r.kind == "read" and r.ok and r.location == location and phase.holds(r.started)
            ],
            q,
        )

    def errors(requests: list[Request], location: str) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for r in requests:
            if r.error and r.location == location and phase.holds(r.started):
                counts[r.error] += 1
        return dict(counts)

    served: dict[str, list[str]] = defaultdict(list)
    for probe in observations.requests:
        if probe.kind == "probe" and probe.ok and probe.region and phase.holds(probe.started):
            served[probe.location].append(probe.region)
    rows = []
    for location in observations.locations:
        seen = served.get(location)
        region = max(set(seen), key=seen.count) if seen else location
        rows.append(
            BaselineRow(
                location=location,
                served_by=region,
                rtt_ms=matrix.rtt_ms(location, region),
                service_p50_ms=p(direct, region, 50),
                with_regions_p50_ms=p(observations.requests, location, 50),
                with_regions_p99_ms=p(observations.requests, location, 99),
                rtt_to_primary_ms=matrix.rtt_ms(location, observations.primary),
                without_regions_p50_ms=p(baseline, location, 50),
                without_regions_p99_ms=p(baseline, location, 99),
                without_regions_errors=errors(baseline, location),
                service_errors=errors(direct, region),
            )
        )
    return rows


def _load(observations: Observations) -> dict[str, float]:
    if not observations.load:
        return {}
    values = [value for _, value in observations.load]
    return {"start": values[0], "max": max(values), "end": values[-1]}
