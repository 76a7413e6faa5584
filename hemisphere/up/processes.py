"""The child processes of one region, and of the world between regions: how each is started
(its command line and environment)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from hemisphere.up.layout import Layout, RegionPorts
from hemisphere.up.provision import LOCAL_AWS_CREDENTIALS
from hemisphere.up.secrets import SharedSecrets
from hemisphere.up.supervisor import Child
from regions.latency import LatencyMatrix

# Variables of the user's shell that would point a region's processes somewhere else.
_FOREIGN = (
    "DATABASE_URL",
    "AWS_ENDPOINT_URL",
    "REDIS_URL",
    "AWS_REGION",
    "AWS_PROFILE",
    "HEMISPHERE_REGION",
    "HEMISPHERE_PRIMARY_REGION",
    "HEMISPHERE_PRIMARY_AWS_ENDPOINT_URL",
    "HEMISPHERE_PUBLISH_URL",
    "HEMISPHERE_RUN_WORKERS",
    "HEMISPHERE_PAYMENTS_URL",
    "HEMISPHERE_DATA_DIR",
    "HEMISPHERE_SEED_DEMO_DATA",
    "HEMISPHERE_REBUILD_PROJECTIONS",
    "HEMISPHERE_REGION_ENDPOINTS",
    "HEMISPHERE_REGION_DATABASE_URLS",
    "HEMISPHERE_EPOCH",
    # Tokens: every region verifies those of `up`'s development issuer (audience and customer
    # claim as it signs them), never another issuer a shell names.
    "HEMISPHERE_OIDC_ISSUER",
    "HEMISPHERE_OIDC_CLIENT_ID",
    "HEMISPHERE_OIDC_CUSTOMER_CLAIM",
)


def base_environment(parent: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in parent.items() if k not in _FOREIGN}


def hemisphere_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "hemisphere.cli", *args]


def api_child(
    ports: RegionPorts,
    *,
    primary: RegionPorts,
    database_url: str,
    secrets: SharedSecrets,
    payments_url: str,
    base_env: dict[str, str],
    token_issuer: str,
    log_dir: Path,
    data_dir: Path,
    rebuild: bool,
    workers: bool = True,
) -> Child:
    """`hemisphere api` of a region: workers only in the primary (unless a separate
    `hemisphere worker` runs them: `workers=False`); a secondary sends its writes to the
    primary's AWS endpoint through the delay proxy of that link."""
    env = region_environment(
        ports,
        primary=primary,
        database_url=database_url,
        secrets=secrets,
        payments_url=payments_url,
        base_env=base_env,
        token_issuer=token_issuer,
        data_dir=data_dir,
    )
    is_primary = ports.name == primary.name
    env["HEMISPHERE_RUN_WORKERS"] = "true" if is_primary and workers else "false"
    env["HEMISPHERE_SEED_DEMO_DATA"] = "true" if is_primary else "false"
    env["HEMISPHERE_REBUILD_PROJECTIONS"] = "true" if rebuild else "false"
    argv = hemisphere_argv("api", "--host", "127.0.0.1", "--port", str(ports.api))
    return Child(f"{ports.name} API", argv, env, log_dir / f"{ports.name}-api.log")


def worker_child(
    ports: RegionPorts,
    *,
    database_url: str,
    secrets: SharedSecrets,
    payments_url: str,
    base_env: dict[str, str],
    token_issuer: str,
    log_dir: Path,
    data_dir: Path,
) -> Child:
    """`hemisphere worker`: a promoted region's workers (outbox relay, saga steps, reconciler,
    profile updates), started beside its running API so the API need not restart."""
    env = region_environment(
        ports,
        primary=ports,
        database_url=database_url,
        secrets=secrets,
        payments_url=payments_url,
        base_env=base_env,
        token_issuer=token_issuer,
        data_dir=data_dir,
    )
    del env["HEMISPHERE_PUBLISH_URL"]  # the API's process publishes the region's changes
    argv = hemisphere_argv("worker")
    return Child(f"{ports.name} workers", argv, env, log_dir / f"{ports.name}-worker.log")


def region_environment(
    ports: RegionPorts,
    *,
    primary: RegionPorts,
    database_url: str,
    secrets: SharedSecrets,
    payments_url: str,
    base_env: dict[str, str],
    token_issuer: str,
    data_dir: Path,
) -> dict[str, str]:
    """`token_issuer`: the URL of `up`'s development issuer. The region verifies its tokens
    (keys fetched by discovery, cached) and issues none: it is no HEMISPHERE_LOCAL_ISSUER."""
    is_primary = ports.name == primary.name
    env = {
        **base_env,
        **secrets.environment(),
        "DATABASE_URL": database_url,
        "AWS_ENDPOINT_URL": ports.aws_url,
        "AWS_ACCESS_KEY_ID": LOCAL_AWS_CREDENTIALS.access_key_id,
        "AWS_SECRET_ACCESS_KEY": LOCAL_AWS_CREDENTIALS.secret_access_key,
        "HEMISPHERE_REGION": ports.name,
        "HEMISPHERE_PRIMARY_REGION": primary.name,
        "HEMISPHERE_PAYMENTS_URL": payments_url,
        "HEMISPHERE_PUBLISH_URL": ports.graphql_url,
        "HEMISPHERE_DATA_DIR": str(data_dir),
        "HEMISPHERE_OIDC_ISSUER": token_issuer,
    }
    if not is_primary:
        env["HEMISPHERE_PRIMARY_AWS_ENDPOINT_URL"] = (
            f"http://127.0.0.1:{ports.aws_via[primary.name]}"
        )
    # Every region's endpoint as seen from here: after a promotion, writes follow the primary
    # the replicated control item names, without a restart.
    endpoints = {ports.name: ports.aws_url}
    endpoints.update({other: f"http://127.0.0.1:{port}" for other, port in ports.aws_via.items()})
    env["HEMISPHERE_REGION_ENDPOINTS"] = ",".join(f"{k}={v}" for k, v in endpoints.items())
    # Every region's PostgreSQL as seen from here (through the same delay proxies as its
    # replication): catalog writes follow the primary there from any region, as Aurora's
    # write forwarding sends a secondary cluster's writes to the primary cluster.
    databases = {ports.name: database_url}
    databases.update(
        {other: _at_port(database_url, port) for other, port in ports.postgres_via.items()}
    )
    env["HEMISPHERE_REGION_DATABASE_URLS"] = ",".join(f"{k}={v}" for k, v in databases.items())
    return env


def _at_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit(":", 1)[0] if parts.port is not None else parts.netloc
    return urlunsplit(parts._replace(netloc=f"{netloc}:{port}"))


def payments_child(port: int, base_env: dict[str, str], log_dir: Path) -> Child:
    argv = [sys.executable, "-m", "hemisphere.payments_sim", "--host", "127.0.0.1"]
    argv += ["--port", str(port)]
    return Child("card provider", argv, base_env, log_dir / "payments.log")


def proxy_specs(layout: Layout, latency: LatencyMatrix) -> list[dict[str, object]]:
    """One delay proxy per outgoing link of every region: to each other region's AWS endpoint
    (write forwarding, DynamoDB replication) and PostgreSQL (streaming replication)."""
    specs: list[dict[str, object]] = []
    for region in layout.regions:
        for other_name, port in region.aws_via.items():
            other = layout.region(other_name)
            specs.append(
                {
                    "name": f"aws {region.name}→{other_name}",
                    "listen": f"127.0.0.1:{port}",
                    "target": f"127.0.0.1:{other.aws}",
                    "one_way_ms": latency.rtt_ms(region.name, other_name) / 2,
                }
            )
        for other_name, port in region.postgres_via.items():
            other = layout.region(other_name)
            specs.append(
                {
                    "name": f"pg {region.name}→{other_name}",
                    "listen": f"127.0.0.1:{port}",
                    "target": f"127.0.0.1:{other.postgres}",
                    "one_way_ms": latency.rtt_ms(region.name, other_name) / 2,
                }
            )
    return specs


def proxies_child(
    layout: Layout, latency: LatencyMatrix, base_env: dict[str, str], parent_pid: int
) -> Child:
    spec_path = layout.data_dir / "proxies.json"
    spec_path.write_text(json.dumps({"proxies": proxy_specs(layout, latency)}, indent=2) + "\n")
    argv = [sys.executable, "-m", "regions.delay_proxy", "--spec", str(spec_path)]
    argv += ["--parent-pid", str(parent_pid)]
    return Child("delay proxies", argv, base_env, layout.log_dir / "proxies.log")


def replicator_child(ports: RegionPorts, layout: Layout, base_env: dict[str, str]) -> Child:
    """`hemisphere replicator`: this region's stream applied to every other region's table,
    each through the delay proxy of that link."""
    replicas = ",".join(f"{other}=http://127.0.0.1:{port}" for other, port in ports.aws_via.items())
    env = {
        **base_env,
        "HEMISPHERE_REGION": ports.name,
        "AWS_ENDPOINT_URL": ports.aws_url,
        "AWS_ACCESS_KEY_ID": LOCAL_AWS_CREDENTIALS.access_key_id,
        "AWS_SECRET_ACCESS_KEY": LOCAL_AWS_CREDENTIALS.secret_access_key,
        "HEMISPHERE_REPLICA_ENDPOINTS": replicas,
        "HEMISPHERE_REPLICATOR_STATUS_PORT": str(ports.replicator_status),
    }
    argv = hemisphere_argv("replicator")
    return Child(
        f"{ports.name} replicator", argv, env, layout.log_dir / f"{ports.name}-replicator.log"
    )


def edge_spec(layout: Layout, latency: LatencyMatrix) -> dict[str, object]:
    """One edge router per user location (named after its region), routing to the nearest
    healthy region's API with the location's RTT to it; health probes each API's /readyz
    (Route 53's model: 1 s interval, 3 failures)."""
    return {
        "latency": _own_region_first(layout, latency),
        "regions": {region.name: region.api_url for region in layout.regions},
        "health": {"interval_s": 1, "timeout_s": 1, "failure_threshold": 3, "path": "/readyz"},
        "edges": [
            {"location": region.name, "listen": f"127.0.0.1:{region.edge}"}
            for region in layout.regions
        ],
    }


# Added to a cross-region RTT that equals a location's RTT to its own region (`none`: all 0).
_TIE_BREAK_MS = 0.001


def _own_region_first(layout: Layout, latency: LatencyMatrix) -> dict[str, object]:
    """The matrix the edges route by: the injected one, except that a location never ties
    with another region (the edge keeps the first region listed on a tie, so under `none`
    every user would go to the first region instead of its own). A microsecond, no delay."""
    local = latency.local_rtt_ms
    table: dict[str, dict[str, float]] = {}
    for i, a in enumerate(layout.names):
        for b in layout.names[i + 1 :]:
            rtt = latency.rtt_ms(a, b)
            table.setdefault(a, {})[b] = rtt if rtt > local else local + _TIE_BREAK_MS
    return {"local_rtt_ms": local, "rtt_ms": table}


def edges_child(
    layout: Layout, latency: LatencyMatrix, base_env: dict[str, str], parent_pid: int
) -> Child:
    spec_path = layout.data_dir / "edges.json"
    spec_path.write_text(json.dumps(edge_spec(layout, latency), indent=2) + "\n")
    argv = [sys.executable, "-m", "regions.edge_runner", "--spec", str(spec_path)]
    argv += ["--parent-pid", str(parent_pid)]
    return Child("edge routers", argv, base_env, layout.log_dir / "edges.log")
