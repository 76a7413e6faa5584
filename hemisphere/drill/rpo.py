"""Recovery point of a fault (pure): which acknowledged orders are gone, what the replicas
lagged by when the region died, and whether every order in flight ended final.

An order is *lost* when the user had its acknowledgement and the primary does not know it at
the end of the drill. It is *in flight* at a kill when it was acknowledged before the kill and
reached no final status before it (its history says when it did)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hemisphere.drill.records import FinalOrder, Observations
from hemisphere.drill.status import (
    dynamodb_lag_histograms,
    dynamodb_lags,
    dynamodb_pending,
    last_before,
    postgres_lags,
)
from hemisphere.drill.timeline import Fault
from regions.lag_histogram import percentile_between

FINAL_WITHIN_S = 60.0
# "The replication lag at the kill" is of the changes written in this long before it.
LAG_AT_KILL_WINDOW_S = 10.0


@dataclass(frozen=True, slots=True)
class RecoveryPoint:
    region: str
    acknowledged_before_kill: int
    lost: list[str]
    lost_acknowledged_after_kill: list[str]
    # Acknowledged before the kill, but the primary never answered about them at the end.
    unknown: int = 0
    # The last /status before the kill: each standby's PostgreSQL replay lag, and the largest
    # DynamoDB replication lag of any pipeline (dynamodb_lag_at).
    postgres_lag_at_kill_ms: dict[str, float] = field(default_factory=dict)
    dynamodb_lag_at_kill_ms: float | None = None
    in_flight: int = 0
    # In flight orders final within FINAL_WITHIN_S of the promotion (of the kill without one).
    final_in_time: int = 0
    not_final: list[str] = field(default_factory=list)
    slowest_final_s: float | None = None

    @property
    def orders_lost(self) -> int:
        return len(self.lost)


def recovery_point(observations: Observations, fault: Fault) -> RecoveryPoint:
    before = [a for a in observations.acknowledged if a.at < fault.killed]
    after = [a for a in observations.acknowledged if fault.killed <= a.at < fault.until]
    finals = observations.final_orders

    def lost(order_id: str) -> bool:
        final = finals.get(order_id)
        return final is not None and final.found is False

    poll = last_before(observations.status, fault.killed)
    status = poll.status if poll else None
    reference = fault.promoted if fault.promoted is not None else fault.killed
    in_flight = [
        final
        for final in (finals.get(a.order_id) for a in before)
        if final is not None and final.found and not _final_by(final, fault.killed)
    ]
    delays = [o.final_at - reference for o in in_flight if o.final_at is not None]
    return RecoveryPoint(
        region=fault.region,
        acknowledged_before_kill=len(before),
        lost=sorted(a.order_id for a in before if lost(a.order_id)),
        lost_acknowledged_after_kill=sorted(a.order_id for a in after if lost(a.order_id)),
        unknown=sum(1 for a in before if a.order_id in finals and finals[a.order_id].found is None),
        postgres_lag_at_kill_ms=dict(postgres_lags(status)),
        dynamodb_lag_at_kill_ms=dynamodb_lag_at(observations, fault.killed),
        in_flight=len(in_flight),
        final_in_time=sum(1 for delay in delays if delay <= FINAL_WITHIN_S),
        not_final=sorted(o.order_id for o in in_flight if o.final_at is None),
        slowest_final_s=max(delays) if delays else None,
    )


def dynamodb_lag_at(observations: Observations, at: float) -> float | None:
    """The largest DynamoDB replication lag of any pipeline just before `at`: the age of a
    change still on its way when one waits; else the p99 of the changes it wrote in the
    LAG_AT_KILL_WINDOW_S before (its histograms' difference); else the figure it reported
    (the p99 of its last 30 s, which can hold an outage long past)."""
    poll = last_before(observations.status, at)
    if poll is None:
        return None
    earlier = last_before(observations.status, at - LAG_AT_KILL_WINDOW_S)
    start = {
        (region, other): histogram
        for region, other, histogram in dynamodb_lag_histograms(earlier.status if earlier else None)
    }
    end = {(r, o): h for r, o, h in dynamodb_lag_histograms(poll.status)}
    pending = {(r, o): age for r, o, age in dynamodb_pending(poll.status)}
    lags: list[float] = []
    for region, other, reported in dynamodb_lags(poll.status):
        pair = (region, other)
        waiting = pending.get(pair)
        counts, recent = percentile_between(start.get(pair), end.get(pair), 99)
        if waiting is not None:
            lags.append(waiting)
        elif recent is not None:
            lags.append(recent)
        elif counts is not None and sum(counts) == 0:
            lags.append(0.0)  # nothing written in the window and nothing waiting: not behind
        else:
            # No histogram to subtract, or the p99 lies above its last bound (five minutes).
            lags.append(reported)
    return max(lags, default=None)


def _final_by(order: FinalOrder, at: float) -> bool:
    return order.final_at is not None and order.final_at <= at
