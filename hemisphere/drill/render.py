"""The report as text: the timeline, then one table per question (pure)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from hemisphere.drill.phases import LatencySummary
from hemisphere.drill.report import FaultSummary, LagSummary, Report

# A cell that is a figure: "12", "-", "+3.4s", "12/40 (3)", "≤ 5.00 s", "11.7x".
_NUMERIC = re.compile(r"^(-|[+≤≥]?\s?\d)")


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell; a column of figures is right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    numeric = [
        bool(rows) and all(_NUMERIC.match(row[i]) for row in rows) for i in range(len(header))
    ]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)]


def format_report(report: Report) -> str:
    out = [
        f"Drill {report.scenario}: primary {report.primary} at the start, latency "
        f"{report.latency}, {report.duration_s:.0f} s, {report.acknowledged} orders acknowledged",
        _load_line(report),
        "",
        "Timeline",
    ]
    out += table(
        ["at", "event", "region", "detail"],
        [[f"+{e.at_s:.1f}s", e.name, e.region, _short(e.detail)] for e in report.events],
    )
    out += ["", "Reads per location, p50/p99 ms (errors)"]
    out += _phase_table(report, report.reads)
    out += ["", "Checkouts per location, p50/p99 ms (errors)"]
    out += _phase_table(report, report.checkouts)
    for fault in report.faults:
        out += ["", *_fault(fault)]
    out += [
        "",
        "Replication lag from /status, p50/p99 ms of the polled figures (each a pipeline's p99 "
        "of its last 30 s, or the age of a change still waiting), every pipeline pooled",
    ]
    out += table(
        ["phase", "DynamoDB", "PostgreSQL replay"],
        [
            [
                name,
                f"{ms(lag.dynamodb_p50_ms)}/{ms(lag.dynamodb_p99_ms)}",
                f"{ms(lag.postgres_p50_ms)}/{ms(lag.postgres_p99_ms)}",
            ]
            for name, lag in report.lags.items()
        ],
    )
    out += ["", *_lag_by_pair(report)]
    out += ["", "Subscriptions (before): order change → subscriber, ms"]
    out += table(
        ["location", "changes", "p50", "p99", "p99 after the primary's location"],
        [
            [d.location, str(d.changes), ms(d.p50_ms), ms(d.p99_ms), ms(d.extra_p99_ms)]
            for d in report.deliveries
        ],
    )
    if report.reconnections:
        out += ["", "Subscriptions re-established"]
        out += table(
            ["location", "broken by", "lost at", "back after"],
            [
                [r.location, r.region, f"+{r.lost:.1f}s", seconds(r.gap_s)]
                for r in report.reconnections
            ],
        )
    out += ["", "Single-region baseline (before): read p50 ms, every location on the primary"]
    out += table(
        ["location", "served by", "RTT", "service", "with regions", "without", "faster", "errors"],
        [
            [
                b.location,
                b.served_by,
                ms(b.rtt_ms),
                ms(b.service_p50_ms),
                ms(b.with_regions_p50_ms),
                f"{ms(b.without_regions_p50_ms)} (RTT {ms(b.rtt_to_primary_ms)})",
                "-" if b.speedup is None else f"{b.speedup:.1f}x",
                _errors(b.without_regions_errors, b.service_errors),
            ]
            for b in report.baseline
        ],
    )
    if report.data_equal:
        equal = ", ".join(f"{region} {verdict}" for region, verdict in report.data_equal.items())
        out += ["", f"Acknowledged orders in every region vs the primary at the end: {equal}"]
    return "\n".join(out) + "\n"


def _phase_table(report: Report, by_location: dict[str, dict[str, LatencySummary]]) -> list[str]:
    names = [p.name for p in report.phases]

    def cell(summary: LatencySummary | None) -> str:
        if summary is None or summary.count == 0:
            return "-"
        errors = f" ({summary.errors})" if summary.errors else ""
        return f"{ms(summary.p50_ms)}/{ms(summary.p99_ms)}{errors}"

    return table(
        ["location", *names],
        [[loc, *(cell(phases.get(n)) for n in names)] for loc, phases in by_location.items()],
    )


def _fault(fault: FaultSummary) -> list[str]:
    point = fault.recovery_point
    rows: list[tuple[str, str]] = [
        ("detected", f"{seconds(fault.detected_after_s)} after the kill"),
        ("its location served elsewhere", f"{seconds(fault.traffic_moved_after_s)} after the kill"),
    ]
    if fault.promoted_region:
        rows += [
            (
                "read-only everywhere",
                f"{seconds(fault.read_only_after_s)} after the kill "
                f"({fault.read_only_locations} locations saw it)",
            ),
            (
                f"{fault.promoted_region} promoted",
                f"first write {seconds(fault.promote_to_first_write_s)} after the promote",
            ),
            ("RTO (kill → first write)", seconds(fault.rto_s)),
        ]
    lag_pg = ", ".join(f"{r} {ms(v)} ms" for r, v in point.postgres_lag_at_kill_ms.items()) or "-"
    since = "the promotion" if fault.promoted_region else "the kill"
    rows += [
        (
            "back, serving its location",
            f"{seconds(fault.back_after_restart_s)} after the restart; resynced "
            f"{seconds(fault.resynced_after_restart_s)} after it",
        ),
        (
            "RPO",
            f"{point.orders_lost} of {point.acknowledged_before_kill} orders acknowledged before "
            f"the kill not found at the end ({len(point.lost_acknowledged_after_kill)} "
            f"acknowledged after it; {point.unknown} unreadable); rejoin reported lost: "
            f"{fault.rejoin_lost_writes if fault.rejoin_lost_writes is not None else 'none'}",
        ),
        (
            "lag at the kill",
            f"PostgreSQL replay {lag_pg}; DynamoDB {ms(point.dynamodb_lag_at_kill_ms)} ms",
        ),
        (
            "in flight at the kill",
            f"{point.in_flight}: {point.final_in_time} final within 60 s of {since}, "
            f"{len(point.not_final)} not final, slowest {seconds(point.slowest_final_s)}",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{fault.scenario} of {fault.region} (killed at +{fault.killed_s:.1f}s)"]
    lines += [f"  {name.ljust(width)}  {value}" for name, value in rows]
    if fault.errors:
        lines.append("  errors users saw:")
        lines += [
            "    " + line
            for line in table(
                ["location", "request", "errors by type", "from", "for", "first outage"],
                [
                    [
                        w.location,
                        w.kind,
                        ", ".join(f"{t} {n}" for t, n in sorted(w.by_type.items())),
                        f"+{w.first:.1f}s",
                        seconds(w.seconds),
                        seconds(w.burst_s),
                    ]
                    for w in fault.errors
                ],
            )
        ]
    else:
        lines.append("  errors users saw: none")
    return lines


def _load_line(report: Report) -> str:
    load = report.load_average
    if not load:
        return ""
    cores = os.cpu_count() or 1
    return (
        f"Machine load average (1 min) on {cores} cores: {load['start']:.1f} at the start, "
        f"{load['max']:.1f} at most, {load['end']:.1f} at the end"
    )


def _errors(baseline: dict[str, int], service: dict[str, int]) -> str:
    parts = [
        f"{what}: " + ", ".join(f"{kind} {count}" for kind, count in sorted(errors.items()))
        for what, errors in (("without", baseline), ("service", service))
        if errors
    ]
    return "; ".join(parts)


def _short(text: str, limit: int = 110) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _lag_by_pair(report: Report) -> list[str]:
    """Each pipeline's DynamoDB lag p99 per phase: of the changes it wrote in the phase (its
    histogram), or, marked *, of the polled figures where it has none."""
    pairs = sorted({pair for lag in report.lags.values() for pair in lag.dynamodb_p99_by_pair_ms})
    if not pairs:
        return []

    def cell(lag: LagSummary, pair: str) -> str:
        value = lag.dynamodb_p99_by_pair_ms.get(pair)
        if value is None:
            return "-"
        return ms(value) + ("*" if pair in lag.dynamodb_p99_polled_pairs else "")

    lines = [
        "DynamoDB replication lag p99 ms per pipeline (source:target), of the changes it wrote "
        "in each phase (* of the polled figures)"
    ]
    return lines + table(
        ["phase", *pairs],
        [[name, *(cell(lag, pair) for pair in pairs)] for name, lag in report.lags.items()],
    )
