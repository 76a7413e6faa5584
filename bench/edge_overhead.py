"""What the edge router adds: a tiny request (and a WebSocket message) direct to a region vs
through the edge with the `none` latency preset, measured in the same run.

    .venv/bin/python bench/edge_overhead.py [--requests 1000] [--messages 1000]

A tiny upstream (Starlette on uvicorn: `/readyz`, a POST `/graphql` answering a fixed small
JSON, a WebSocket echo) and the edge (`python -m regions.edge_runner`, as `hemisphere up` runs
it) are child processes; this process is the client (httpx with keep-alive, `websockets`).
Requests are sequential (latency, not throughput), in alternating blocks of 100 so that drift
of a shared machine hits both paths alike. It prints p50/p90/p99 per path, the ratio, the
added milliseconds, and the edge process's CPU per proxied request (utime+stime from /proc,
the figure a loaded machine disturbs least). Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hemisphere.localstack import free_port

BLOCK = 100
BODY = {"query": '{ product(id: "p-0001") { id } }'}


def serve_upstream(port: int) -> None:
    """The tiny region (runs in a child process)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    answer = b'{"data":{"product":{"id":"p-0001"}}}'

    async def readyz(request: Request) -> Response:
        return Response(b'{"status":"ready"}', media_type="application/json")

    async def graphql(request: Request) -> Response:
        await request.body()
        return Response(answer, media_type="application/json")

    async def echo(socket: WebSocket) -> None:
        await socket.accept(subprotocol="graphql-ws")
        try:
            while True:
                await socket.send_text(await socket.receive_text())
        except WebSocketDisconnect:
            pass

    def exit_with_parent(parent: int) -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=exit_with_parent, args=(os.getppid(),), daemon=True).start()
    app = Starlette(
        routes=[
            Route("/readyz", readyz),
            Route("/graphql", graphql, methods=["POST"]),
            WebSocketRoute("/graphql/realtime", echo),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _wait_http(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


async def _http_times(url: str, count: int, client: httpx.AsyncClient) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = await client.post(url, json=BODY)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return times


async def _ws_times(url: str, count: int) -> list[float]:
    times = []
    async with websockets.connect(url, subprotocols=[websockets.Subprotocol("graphql-ws")]) as ws:
        for index in range(count):
            started = time.perf_counter()
            await ws.send(str(index))
            await ws.recv()
            times.append(time.perf_counter() - started)
    return times


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    quantiles = statistics.quantiles(ordered, n=100)
    return {"p50": quantiles[49] * 1000, "p90": quantiles[89] * 1000, "p99": quantiles[98] * 1000}


def _print(kind: str, direct: list[float], edge: list[float]) -> None:
    d, e = _summary(direct), _summary(edge)
    print(f"\n{kind} ({len(direct)} each, sequential)")
    print(f"{'path':<8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}")
    for name, figures in (("direct", d), ("edge", e)):
        print(f"{name:<8}{figures['p50']:>9.2f}{figures['p90']:>9.2f}{figures['p99']:>9.2f}")
    print(
        f"edge/direct p50: {e['p50'] / d['p50']:.2f}x; "
        f"added at p50: {e['p50'] - d['p50']:.2f} ms, at p99: {e['p99'] - d['p99']:.2f} ms"
    )


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(upstream: int, edge: int, edge_pid: int, requests: int, messages: int) -> None:
    direct_url = f"http://127.0.0.1:{upstream}/graphql"
    edge_url = f"http://127.0.0.1:{edge}/graphql"
    direct: list[float] = []
    via_edge: list[float] = []
    async with httpx.AsyncClient() as client:
        await _http_times(direct_url, 50, client)  # warm-up: connections, caches
        await _http_times(edge_url, 50, client)
        edge_cpu = 0.0
        for _ in range(max(1, requests // BLOCK)):
            direct += await _http_times(direct_url, BLOCK, client)
            before = _cpu_seconds(edge_pid)
            via_edge += await _http_times(edge_url, BLOCK, client)
            edge_cpu += _cpu_seconds(edge_pid) - before
    _print("HTTP POST /graphql", direct, via_edge)
    print(f"edge CPU per proxied request: {edge_cpu / len(via_edge) * 1000:.2f} ms")
    ws_direct: list[float] = []
    ws_edge: list[float] = []
    for _ in range(max(1, messages // BLOCK)):
        ws_direct += await _ws_times(f"ws://127.0.0.1:{upstream}/graphql/realtime", BLOCK)
        ws_edge += await _ws_times(f"ws://127.0.0.1:{edge}/graphql/realtime", BLOCK)
    _print("WebSocket message round trip", ws_direct, ws_edge)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return
    upstream_port, edge_port = free_port(), free_port()
    upstream = subprocess.Popen([sys.executable, __file__, "--serve-upstream", str(upstream_port)])
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "edges.json"
        spec.write_text(
            json.dumps(
                {
                    "latency": "none",
                    "regions": {"r": f"http://127.0.0.1:{upstream_port}"},
                    "edges": [{"location": "r", "listen": f"127.0.0.1:{edge_port}"}],
                }
            )
        )
        _wait_http(f"http://127.0.0.1:{upstream_port}/readyz")
        edge = subprocess.Popen(
            [sys.executable, "-m", "regions.edge_runner", "--spec", str(spec)],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).resolve().parent.parent,
        )
        try:
            assert edge.stdout is not None
            edge.stdout.readline()  # {"ready": ...}
            print(f"edge overhead, latency preset none, {os.cpu_count()} cores")
            asyncio.run(measure(upstream_port, edge_port, edge.pid, args.requests, args.messages))
        finally:
            edge.terminate()
            edge.wait()
            upstream.terminate()
            upstream.wait()


if __name__ == "__main__":
    main()
