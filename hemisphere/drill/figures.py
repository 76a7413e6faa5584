"""The issue's "Figures to reach", measured by one drill run: each figure, its target, their
ratio (measured ÷ target: ≤ 1 meets it, except for "faster", where ≥ 1 does) (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from hemisphere.drill.render import table
from hemisphere.drill.report import Report
from regions.latency import LatencyMatrix

# The edges' health checks (Route 53's model): interval times failure threshold, 1 s x 3.
DETECTION_S = 3.0
SPEEDUP_GOAL = 10.0


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    measured: float | None
    target: float
    unit: str
    higher_is_better: bool = False

    @property
    def ratio(self) -> float | None:
        if self.measured is None or self.target == 0:
            return None
        return self.measured / self.target

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        if self.higher_is_better:
            return self.measured >= self.target
        return self.measured <= self.target


def figures(
    report: Report, matrix: LatencyMatrix, detection_s: float = DETECTION_S
) -> list[Figure]:
    result: list[Figure] = []
    for row in report.baseline:
        if row.service_p50_ms is not None:
            result.append(
                Figure(
                    f"read p50 {row.location} vs RTT {row.rtt_ms:.0f} + service "
                    f"{row.service_p50_ms:.0f} ms (x1.5)",
                    row.with_regions_p50_ms,
                    1.5 * (row.rtt_ms + row.service_p50_ms),
                    "ms",
                )
            )
    for row in report.baseline:
        result.append(
            Figure(
                f"read p50 {row.location}: without regions ÷ with",
                row.speedup,
                SPEEDUP_GOAL if row.location == "ap-southeast-2" else 1.0,
                "x",
                higher_is_better=True,
            )
        )
    before = report.lags.get(report.phases[0].name) if report.phases else None
    if before is not None:
        for pair, p99 in before.dynamodb_p99_by_pair_ms.items():
            a, _, b = pair.partition(":")
            of = "polled" if pair in before.dynamodb_p99_polled_pairs else "the phase's changes"
            result.append(
                Figure(
                    f"DynamoDB replication lag p99 {pair} ({of}) vs one-way + 100 ms",
                    p99,
                    matrix.one_way_seconds(a, b) * 1000.0 + 100.0,
                    "ms",
                )
            )
        result.append(Figure("PostgreSQL replay lag p99", before.postgres_p99_ms, 1000.0, "ms"))
        for delivery in report.deliveries:
            if delivery.location == report.primary:
                continue
            pairs = before.dynamodb_p99_by_pair_ms
            replication = max(
                (v for k, v in pairs.items() if delivery.location in k and report.primary in k),
                default=None,
            )
            if replication is not None:
                result.append(
                    Figure(
                        f"change → subscriber in {delivery.location}, p99 after the primary's "
                        "location, vs replication lag + 50 ms",
                        delivery.extra_p99_ms,
                        replication + 50.0,
                        "ms",
                    )
                )
    for fault in report.faults:
        point = fault.recovery_point
        if fault.scenario == "secondary-loss":
            # Reads: what a user of the lost region sees (its checkouts also depend on the
            # primary, and the table above shows them).
            window = max(
                (
                    w.burst_s
                    for w in fault.errors
                    if w.location == fault.region and w.kind == "read"
                ),
                default=0.0,
            )
            result.append(
                Figure(
                    f"secondary loss ({fault.region}): its users' first read outage vs detection "
                    f"{detection_s:.0f} s + 1 s",
                    window,
                    detection_s + 1.0,
                    "s",
                )
            )
            result.append(
                Figure("secondary loss: acknowledged writes lost", point.orders_lost, 0, "orders")
            )
        else:
            result.append(
                Figure("primary loss: every region read-only", fault.read_only_after_s, 5.0, "s")
            )
            result.append(
                Figure("promote → first write accepted", fault.promote_to_first_write_s, 10.0, "s")
            )
            pg_lag = max(point.postgres_lag_at_kill_ms.values(), default=0.0)
            ddb_lag = point.dynamodb_lag_at_kill_ms
            result.append(
                Figure(
                    f"RPO: acknowledged orders not found at the end (lag at the kill: "
                    f"PostgreSQL {pg_lag:.0f} ms, DynamoDB "
                    f"{'-' if ddb_lag is None else f'{ddb_lag:.0f}'} ms)",
                    point.orders_lost,
                    0,
                    "orders",
                )
            )
            slowest = "-" if point.slowest_final_s is None else f"{point.slowest_final_s:.1f} s"
            result.append(
                Figure(
                    f"in-flight orders not final within 60 s of the promotion (of "
                    f"{point.in_flight}; slowest final {slowest})",
                    point.in_flight - point.final_in_time,
                    0,
                    "orders",
                )
            )
        result.append(
            Figure(
                f"{fault.region} back → serving reads as a secondary",
                fault.back_after_restart_s,
                30.0,
                "s",
            )
        )
    return result


def format_figures(rows: list[Figure]) -> str:
    def value(number: float | None, unit: str) -> str:
        if number is None:
            return "not measured"
        return f"{number:.2f} {unit}" if unit in ("x", "s") else f"{number:.0f} {unit}"

    def verdict(figure: Figure) -> str:
        return {True: "met", False: "MISSED", None: "-"}[figure.met]

    lines = ["Figures to reach (one run; ratio = measured ÷ target)"]
    lines += table(
        ["figure", "measured", "target", "ratio", ""],
        [
            [
                f.name,
                value(f.measured, f.unit),
                ("≥ " if f.higher_is_better else "≤ ") + value(f.target, f.unit),
                "-" if f.ratio is None else f"{f.ratio:.2f}",
                verdict(f),
            ]
            for f in rows
        ],
    )
    return "\n".join(lines) + "\n"


def figures_json(rows: list[Figure]) -> list[dict[str, object]]:
    return [
        {
            "name": f.name,
            "measured": f.measured,
            "target": f.target,
            "unit": f.unit,
            "ratio": f.ratio,
            "met": f.met,
        }
        for f in rows
    ]
