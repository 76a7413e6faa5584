"""--json's record of every observation of a run, besides the report (pure)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from hemisphere.drill.records import Observations


def observations_json(observations: Observations) -> dict[str, Any]:
    """Every observation, times as offsets from the start: what --json carries besides the
    report, for whoever wants to look again (rows, not objects: a drill makes thousands)."""
    start = observations.started

    def at(value: float) -> float:
        return round(value - start, 4)

    return {
        "requests": {
            "columns": ["location", "kind", "sent_s", "latency_ms", "error", "region"],
            "rows": [
                [r.location, r.kind, at(r.started), round(r.latency_ms, 2), r.error, r.region]
                for r in observations.requests
            ],
        },
        "acknowledged": [[a.order_id, a.location, at(a.at)] for a in observations.acknowledged],
        "deliveries": {
            "columns": ["location", "order_id", "status", "version", "changed_s", "received_s"],
            "rows": [
                [d.location, d.order_id, d.status, d.version, at(d.changed_at), at(d.received_at)]
                for d in observations.deliveries
            ],
        },
        "connections": [[c.location, at(c.at), c.state] for c in observations.connections],
        "status": [[at(p.at), p.status] for p in observations.status],
        "actions": [
            {**asdict(a), "requested": at(a.requested), "answered": at(a.answered)}
            for a in observations.actions
        ],
        "final_orders": {k: asdict(v) for k, v in observations.final_orders.items()},
    }
