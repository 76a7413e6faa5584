"""`GET /status` of the control endpoint: what every region says of itself.

Each figure comes from the part that knows it: health from the API's /readyz, the epoch
and the primary a region believes in from its GraphQL `region` field (what its clients see),
subscriptions from the edges (the WebSocket connections they hold to each region),
DynamoDB replication lag from the replicators' status endpoints, PostgreSQL replay lag and
in-flight sagas from the region's own PostgreSQL node. A part that does not answer leaves
its figure null; status never waits more than about a second per region.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from hemisphere.pgcluster.errors import PgClusterError
from hemisphere.pgcluster.node import query_value
from hemisphere.up import postgres
from hemisphere.up.region import believed_topology

if TYPE_CHECKING:
    from hemisphere.up.orchestrator import World
    from hemisphere.up.region import Region

PROBE_TIMEOUT_SECONDS = 2.0
IN_FLIGHT_SQL = "SELECT count(*) FROM sagas WHERE done_at IS NULL"


def collect_status(world: World) -> dict[str, Any]:
    regions = list(world.regions.values())
    with ThreadPoolExecutor(max_workers=len(regions) + 1) as pool:
        websockets = pool.submit(_edge_websockets, world)
        reports = list(pool.map(lambda region: region_status(world, region), regions))
    for region, report in zip(regions, reports, strict=True):
        if report["subscriptions"] is None and not region.down:
            report["subscriptions"] = websockets.result().get(region.name)
    return {
        "primary": world.state.primary,
        "epoch": world.state.epoch,
        "regions": {region.name: report for region, report in zip(regions, reports, strict=True)},
    }


def region_status(world: World, region: Region) -> dict[str, Any]:
    report: dict[str, Any] = {
        "role": "down",
        "health": "unhealthy",
        "epoch": None,
        "believes_primary": None,
        "read_only": None,
        "dynamodb_replication_lag_ms": {},
        "dynamodb_replication_lag_histogram": {},
        "dynamodb_replication_pending_ms": {},
        "postgres_replay_lag_ms": None,
        "subscriptions": None,
        "in_flight_sagas": None,
        "graphql": region.ports.graphql_url,
    }
    if region.down:
        return report
    report["role"] = "primary" if region.name == world.state.primary else "secondary"
    readiness = region.readiness()
    if readiness is not None:
        report["health"] = "healthy" if readiness.get("status") == "ready" else "unhealthy"
        report["subscriptions"] = readiness.get("subscriptions")
        report["checks"] = readiness.get("checks")
    believed = believed_topology(
        region.ports.graphql_url, world.secrets.api_key, PROBE_TIMEOUT_SECONDS
    )
    if believed is not None:
        report["epoch"] = believed.get("epoch")
        report["believes_primary"] = believed.get("primaryRegion")
        report["read_only"] = believed.get("readOnly")
    pipelines = _replication_pipelines(region)
    report["dynamodb_replication_lag_ms"] = _replication_lag(pipelines)
    report["dynamodb_replication_lag_histogram"] = {
        target: pipeline["lag_histogram"]
        for target, pipeline in pipelines.items()
        if pipeline.get("lag_histogram") is not None
    }
    # The age of the oldest change still on its way to each target (None: nothing waits).
    report["dynamodb_replication_pending_ms"] = {
        target: pipeline.get("pending_ms") for target, pipeline in pipelines.items()
    }
    report["postgres_replay_lag_ms"] = (
        postgres.replay_lag_ms(region.node) if region.postgres_role == "replica" else None
    )
    report["in_flight_sagas"] = _in_flight_sagas(region)
    return report


def _replication_pipelines(region: Region) -> dict[str, dict[str, Any]]:
    """The status of each of the region's replication pipelines, by target ({} when its
    replicator does not answer)."""
    url = f"http://127.0.0.1:{region.ports.replicator_status}/status"
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_SECONDS) as answer:
            body = json.loads(answer.read())
    except (urllib.error.URLError, OSError, ValueError):
        return {}
    targets = body.get("targets") if isinstance(body, dict) else None
    if not isinstance(targets, dict):
        return {}
    return {t: p for t, p in targets.items() if isinstance(p, dict)}


def _replication_lag(pipelines: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """Per target: the age of the oldest change not yet applied there when there is one (it
    grows while a target is down), else the p99 lag of the changes of the last 30 s (None when
    there were none: the p99 of every change since start-up would show an outage long past).
    The lag over any other stretch of time comes from the pipelines' histograms."""
    lags: dict[str, float | None] = {}
    for target, pipeline in pipelines.items():
        pending = pipeline.get("pending_ms")
        recent = (pipeline.get("lag_ms") or {}).get("recent_p99")
        lags[target] = pending if pending is not None else recent
    return lags


def _edge_websockets(world: World) -> dict[str, int]:
    """The WebSocket connections (subscriptions' transport) the edges hold to each region:
    what users subscribed through the edges; a connection made to a region directly is not
    counted (a region's API does not report its own)."""
    totals: dict[str, int] = {}
    for ports in world.layout.regions:
        url = f"http://127.0.0.1:{ports.edge}/edge/status"
        try:
            with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_SECONDS) as answer:
                body = json.loads(answer.read())
        except (urllib.error.URLError, OSError, ValueError):
            continue
        for region, seen in (body.get("regions") or {}).items():
            totals[region] = totals.get(region, 0) + int(seen.get("websockets") or 0)
    return totals


def _in_flight_sagas(region: Region) -> int | None:
    try:
        return int(query_value(region.node.port, IN_FLIGHT_SQL, database="hemisphere"))
    except (PgClusterError, ValueError):
        return None
