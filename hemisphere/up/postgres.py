"""A region's PostgreSQL node, through hemisphere.pgcluster (the Aurora global database
stand-in): what `up` asks of it, in its own words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hemisphere.pgcluster import failover, process, provision, status
from hemisphere.pgcluster.errors import PgClusterError
from hemisphere.pgcluster.node import PgNode, is_standby_on_disk
from hemisphere.pgcluster.node import has_data as _has_data
from hemisphere.up.layout import RegionPorts

PostgresError = PgClusterError
LOCALHOST = "127.0.0.1"


def node_for(ports: RegionPorts, region_dir: Path) -> PgNode:
    return PgNode(ports.name, region_dir / "postgres", ports.postgres)


def has_data(node: PgNode) -> bool:
    return _has_data(node)


def start_primary(node: PgNode, peer_ports: list[int]) -> None:
    """Refused (PgRoleError) if a peer that answers is a primary on a newer timeline: this
    node was replaced while `up` was away and must rejoin instead."""
    provision.init_primary(node, peers=[(LOCALHOST, port) for port in peer_ports])


def start_replica(node: PgNode, upstream_port: int) -> None:
    """A hot standby streaming from the primary through the delay proxy at `upstream_port`
    (a base backup the first time)."""
    provision.make_replica(node, LOCALHOST, upstream_port)


def rejoin(node: PgNode, upstream_port: int) -> dict[str, Any]:
    """A former primary becomes a standby of the new one (pg_rewind); returns what it lost
    (its writes the new primary never received): reported, never merged back."""
    return lost_writes(failover.rejoin(node, LOCALHOST, upstream_port))


def lost_anything(lost: dict[str, Any] | None) -> bool:
    return bool(lost and (lost["lost_transactions"] or lost["lost_rows"] or lost["lost_orders"]))


def describe_lost(lost: dict[str, Any]) -> str:
    orders = ", ".join(lost["lost_orders"]) or "none"
    rows = len(lost["lost_rows"] or [])
    return (
        f"{lost['lost_transactions'] or 0} transaction(s), {rows} row(s) it had that the "
        f"primary lacks (orders: {orders}); rewound by {lost['method']}, not merged"
    )


def lost_writes(report: failover.RejoinReport) -> dict[str, Any]:
    return {
        "method": report.method,
        "fork_lsn": report.fork_lsn,
        "lost_transactions": report.lost_transactions,
        "lost_wal_bytes": report.lost_wal_bytes,
        "lost_orders": list(report.lost_orders),
        "lost_rows": None
        if report.lost_rows is None
        else [
            {
                "table": r.table,
                "id": r.id,
                "old_version": r.old_version,
                "new_version": r.new_version,
            }
            for r in report.lost_rows
        ],
        "seconds": round(report.seconds, 3),
    }


def promote(node: PgNode) -> float:
    """Returns the seconds from pg_promote() to the first accepted write."""
    return failover.promote(node).seconds


def follow(node: PgNode, upstream_port: int) -> dict[str, Any] | None:
    """Re-point a standby to the new primary; if it had gone past the fork it is rewound and
    what it lost is returned."""
    report = failover.follow(node, LOCALHOST, upstream_port)
    return None if report is None else lost_writes(report)


def kill(node: PgNode) -> None:
    process.kill(node)


def stop(node: PgNode) -> None:
    process.stop(node)


def replay_lag_ms(node: PgNode) -> float | None:
    """How far the replica's replay is behind (0 when caught up); None for a primary or a
    node that does not answer."""
    try:
        seen = status.replication_status(node)
    except PgClusterError:
        return None
    if isinstance(seen, status.StandbyStatus):
        return seen.replay_lag_ms
    return None


def is_standby(node: PgNode) -> bool:
    return is_standby_on_disk(node)
