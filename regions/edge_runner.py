"""Several edge routers (one per user location) and their shared health checker in one process.

    python -m regions.edge_runner --spec edges.json [--parent-pid PID]

with edges.json:

    {"latency": "global",                  // a preset, a FILE path, or a FILE's object
     "regions": {"us-east-1": "http://127.0.0.1:8001", ...},   // base URLs (a path is dropped)
     "health": {"interval_s": 1, "timeout_s": 1, "failure_threshold": 3, "path": "/readyz"},
     "edges": [{"location": "us-east-1", "listen": "127.0.0.1:8000"}, ...]}

`health` and each of its keys are optional (Route 53's model with drill-fast defaults). Once
the regions were probed once and every edge listens it prints one stdout line
`{"ready": [{"location": ..., "listen": "127.0.0.1:8000"}, ...]}`. SIGTERM/SIGINT/SIGHUP: stop
listening, close every WebSocket (1012) and exit 0; it exits by itself when its parent is gone.
Health transitions are printed to stderr as one JSON line each (`{"health": {...}}`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
from collections.abc import Callable, Coroutine, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from regions import latency
from regions.edge import EdgeRouter
from regions.health import (
    DEFAULT_FAILURE_THRESHOLD,
    DEFAULT_INTERVAL_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    READINESS_PATH,
    HealthChecker,
    HttpReadinessProbe,
    Transition,
)
from regions.latency import LatencyMatrix, LatencyMatrixError
from regions.lifeline import run_until_stopped
from regions.network_priority import run_as_network

SHUTDOWN_SECONDS = 3


@dataclass(frozen=True)
class EdgeSpec:
    location: str
    host: str
    port: int  # 0: any free port (see RunningEdges.ports)


@dataclass(frozen=True)
class EdgesSpec:
    matrix: LatencyMatrix
    regions: Mapping[str, str]
    edges: Sequence[EdgeSpec]
    interval: float = DEFAULT_INTERVAL_SECONDS
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    readiness_path: str = READINESS_PATH

    @classmethod
    def from_json(cls, document: object) -> EdgesSpec:
        """The spec file's content; ValueError (LatencyMatrixError included) naming the fault."""
        if not isinstance(document, Mapping):
            raise ValueError("an edges spec must be a JSON object")
        try:
            regions = document["regions"]
            edges = document["edges"]
        except KeyError as missing:
            raise ValueError(f"the edges spec lacks {missing}") from None
        if not isinstance(regions, Mapping) or not regions:
            raise ValueError("edges spec: regions must map each region to its base URL")
        if not isinstance(edges, list) or not all(isinstance(edge, Mapping) for edge in edges):
            raise ValueError("edges spec: edges must be a list of {location, listen}")
        health = document.get("health", {})
        if not isinstance(health, Mapping):
            raise ValueError("edges spec: health must be an object")
        return cls(
            matrix=latency.load(document.get("latency", "none")),
            regions={str(name): str(url) for name, url in regions.items()},
            edges=[_edge(edge) for edge in edges],
            interval=float(health.get("interval_s", DEFAULT_INTERVAL_SECONDS)),
            timeout=float(health.get("timeout_s", DEFAULT_TIMEOUT_SECONDS)),
            failure_threshold=int(health.get("failure_threshold", DEFAULT_FAILURE_THRESHOLD)),
            readiness_path=str(health.get("path", READINESS_PATH)),
        )


def _edge(document: Mapping[str, Any]) -> EdgeSpec:
    listen = document.get("listen", "")
    host, _, port = str(listen).rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # "[::1]:8000"
    if "location" not in document or not host or not port.isdigit():
        raise ValueError(f"edges spec: {dict(document)!r} needs location and listen 'host:port'")
    return EdgeSpec(str(document["location"]), host, int(port))


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to the runner (several share one process)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class RunningEdges:
    """What `run_edges` hands to `on_ready`: the routers, the checker and the bound ports."""

    routers: list[EdgeRouter]
    health: HealthChecker
    ports: dict[str, int] = field(default_factory=dict)  # location → port


async def run_edges(
    spec: EdgesSpec, on_ready: Callable[[RunningEdges], None] | None = None
) -> None:
    """Serve every edge until cancelled; then close WebSockets and connections to regions."""
    probe = HttpReadinessProbe(timeout=spec.timeout, path=spec.readiness_path)
    health = HealthChecker(
        spec.regions,
        probe,
        interval=spec.interval,
        timeout=spec.timeout,
        failure_threshold=spec.failure_threshold,
    )
    routers = [EdgeRouter(edge.location, spec.regions, spec.matrix, health) for edge in spec.edges]
    servers = [
        _EmbeddedServer(
            uvicorn.Config(
                router,
                host=edge.host,
                port=edge.port,
                lifespan="off",
                access_log=False,
                log_level="warning",
                timeout_graceful_shutdown=SHUTDOWN_SECONDS,
                # Loopback both sides: compressing each message again would be CPU for nothing.
                ws_per_message_deflate=False,
            )
        )
        for router, edge in zip(routers, spec.edges, strict=True)
    ]
    serving: list[asyncio.Task[None]] = []
    checking: asyncio.Task[None] | None = None
    sockets: list[socket.socket] = []
    try:
        # Bound here, so that a port already taken is an OSError before anything runs.
        for edge in spec.edges:
            sockets.append(_bind(edge))
        await health.check_once()  # no request waits for a first verdict
        checking = asyncio.create_task(_after(spec.interval, health.run))
        serving = [
            asyncio.create_task(server.serve(sockets=[sock]))
            for server, sock in zip(servers, sockets, strict=True)
        ]
        await _started(servers, serving)
        if on_ready is not None:
            running = RunningEdges(routers, health)
            for edge, sock in zip(spec.edges, sockets, strict=True):
                running.ports[edge.location] = sock.getsockname()[1]
            on_ready(running)
        # wait, not gather: a cancellation must reach the servers as should_exit (below), so
        # that they close their listeners before the sockets are closed.
        await asyncio.wait(serving, return_when=asyncio.FIRST_COMPLETED)
        for task in serving:
            if task.done():
                task.result()  # a server that stopped by itself says why
    finally:
        for server in servers:
            server.should_exit = True
        for router in routers:
            await router.aclose()
        await asyncio.gather(*serving, return_exceptions=True)
        if checking is not None:
            checking.cancel()
            await asyncio.gather(checking, return_exceptions=True)
        await probe.aclose()
        for sock in sockets:
            sock.close()


def _bind(edge: EdgeSpec) -> socket.socket:
    family = socket.AF_INET6 if ":" in edge.host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns Nagle off only on sockets whose proto says TCP,
    # and with Nagle on, a response's second write waits for a delayed ACK (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((edge.host, edge.port))
    except OSError as error:
        sock.close()
        where = f"{edge.host}:{edge.port}"
        raise OSError(f"edge {edge.location} cannot listen on {where}: {error}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def _after(delay: float, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    await asyncio.sleep(delay)
    await work()


async def _started(servers: list[_EmbeddedServer], serving: list[asyncio.Task[None]]) -> None:
    while not all(server.started for server in servers):
        failed = [task for task in serving if task.done()]
        if failed:
            failed[0].result()  # raises why it could not start
            raise OSError("an edge server stopped before it started")
        await asyncio.sleep(0.01)


def _print_ready(spec: EdgesSpec) -> Callable[[RunningEdges], None]:
    def report(running: RunningEdges) -> None:
        running.health.subscribe(_print_transition)
        ready = [
            {"location": edge.location, "listen": _address(edge.host, running.ports[edge.location])}
            for edge in spec.edges
        ]
        print(json.dumps({"ready": ready}), flush=True)

    return report


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _print_transition(transition: Transition) -> None:
    print(json.dumps({"health": transition.to_json()}), file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m regions.edge_runner", description="Edge routers of the user locations."
    )
    parser.add_argument("--spec", type=Path, required=True, help="JSON spec of the edges")
    parser.add_argument(
        "--parent-pid", type=int, default=os.getppid(), help="exit when this process is gone"
    )
    args = parser.parse_args(argv)
    run_as_network()  # it stands in for the network: see regions/network_priority.py
    try:
        spec = EdgesSpec.from_json(json.loads(args.spec.read_text()))
        for edge in spec.edges:
            EdgeRouter.check_latencies(edge.location, spec.regions, spec.matrix)
    except (OSError, json.JSONDecodeError, ValueError, LatencyMatrixError) as error:
        print(f"edge routers: {args.spec}: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run_until_stopped(run_edges(spec, _print_ready(spec)), args.parent_pid))
    except OSError as error:  # a port already taken, most likely
        print(f"edge routers: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
