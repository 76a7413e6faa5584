"""How changes reached subscribers, and how subscriptions survived faults (pure).

A change made in the primary reaches every location's subscriber; per location the delay is
`received - updatedAt` (updatedAt is PostgreSQL's clock, this machine's). The primary's own
location receives it after the projection and its region's stream; another location after
that plus replication: the difference of the two receipts of one change (`extra`) is what
replication added, to compare with the replication lag."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hemisphere.drill.phases import Phase, percentile
from hemisphere.drill.records import Connection, Delivery
from hemisphere.drill.timeline import Fault


@dataclass(frozen=True, slots=True)
class DeliverySummary:
    location: str
    changes: int
    p50_ms: float | None
    p99_ms: float | None
    # Receipt here minus receipt in the primary's location, for the same change.
    extra_p99_ms: float | None


@dataclass(frozen=True, slots=True)
class Reconnection:
    location: str
    region: str  # the region whose fault broke it
    lost: float
    established: float | None

    @property
    def gap_s(self) -> float | None:
        return None if self.established is None else self.established - self.lost


def delivery_by_location(
    deliveries: Iterable[Delivery], primary_location: str, phase: Phase | None = None
) -> list[DeliverySummary]:
    """Per location, the delay of changes made in `phase` (all when None)."""
    receipts: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
    delays: dict[str, list[float]] = defaultdict(list)
    for delivery in deliveries:
        if phase is not None and not phase.holds(delivery.changed_at):
            continue
        key = (delivery.order_id, delivery.version)
        if delivery.location in receipts[key]:
            continue  # a duplicate (a re-established subscription): the first receipt counts
        receipts[key][delivery.location] = delivery.received_at
        delays[delivery.location].append((delivery.received_at - delivery.changed_at) * 1000.0)
    extra: dict[str, list[float]] = defaultdict(list)
    for seen in receipts.values():
        reference = seen.get(primary_location)
        if reference is None:
            continue
        for location, received in seen.items():
            extra[location].append((received - reference) * 1000.0)
    return [
        DeliverySummary(
            location=location,
            changes=len(delays[location]),
            p50_ms=percentile(delays[location], 50),
            p99_ms=percentile(delays[location], 99),
            extra_p99_ms=percentile(extra[location], 99),
        )
        for location in sorted(delays)
    ]


def reconnections(connections: Sequence[Connection], faults: Sequence[Fault]) -> list[Reconnection]:
    """Per fault and location: the first subscription lost after the kill, and when the
    subscriber had it back (start_ack again)."""
    result = []
    for fault in faults:
        by_location: dict[str, list[Connection]] = defaultdict(list)
        for connection in connections:
            if fault.killed <= connection.at < fault.until:
                by_location[connection.location].append(connection)
        for location, changes in sorted(by_location.items()):
            lost = next((c for c in changes if c.state == "lost"), None)
            if lost is None:
                continue
            back = next((c for c in changes if c.state == "established" and c.at >= lost.at), None)
            result.append(Reconnection(location, fault.region, lost.at, back.at if back else None))
    return result
