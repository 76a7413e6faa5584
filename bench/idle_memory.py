"""What an idle AppSync real-time connection costs the instance in memory, and where it goes.

    .venv/bin/python bench/idle_memory.py [--connections 2000] [--trace 0|N] [--top 30]
        [--keep DIR]

One API instance (create_app on an in-memory runtime and the in-process broker, with the uvicorn
configuration `hemisphere serve` runs: uvloop, its WebSocket protocol, no permessage-deflate) on
core 0; this client on core 1. The client opens 20 warm-up connections, then --connections more,
each an AppSync real-time WebSocket (raw `websockets`) with one `onOrderChanged(customerId: …)`
subscription of its own customer, acknowledged; then it waits 2 s and prints the instance's RSS
growth per connection (what bench/subscriptions.py reports, without its backends: seconds
instead of a minute).

With --trace N the instance runs tracemalloc with N frames (slower, and its RSS means nothing
then): the Python allocations still alive after the connections opened, per connection, by
allocation site (--top of them), and by the innermost frame of this repository in each stack.
No Redis, PostgreSQL, moto or the issuer's HTTP discovery needed: the instance and this client
share a development issuer's key in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import gc
import json
import os
import pickle
import resource
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import psutil
from procs import Processes, free_port, tail

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

import websockets  # noqa: E402
from websockets.typing import Subprotocol  # noqa: E402

from hemisphere.local_issuer import LocalIssuer  # noqa: E402

SERVER_CPU, CLIENT_CPU = 0, 1
ISSUER_URL = "http://testserver"
WARM_UP = 20
SUBSCRIPTION = """subscription($c: ID) { onOrderChanged(customerId: $c) {
  id customerId status version total { amount currency } updatedAt } }"""
PROJECT = ("hemisphere/", "subscriptions/", "resolvers/", "schema/", "domain/", "adapters/")


# --- the instance (a child process: --serve) ------------------------------------------------


def serve(port: int, directory: Path, frames: int) -> None:
    """The app on a fake runtime; SIGUSR1 writes `snapshot-<n>` (and `mark-<n>` once done)."""
    if frames:
        tracemalloc.start(frames)
    from dataclasses import replace

    import uvicorn

    from hemisphere.app import create_app
    from hemisphere.roles.serving import Shutdown, listen, uvicorn_config
    from tests.support.app import SETTINGS, fake_runtime, runtime_factory
    from tests.support.fakes import InMemoryReader

    settings = replace(SETTINGS, data_dir=directory, oidc_issuer=ISSUER_URL)
    app = create_app(settings, runtime_factory=runtime_factory(fake_runtime(InMemoryReader())))
    marks = 0

    def mark(signum: int, frame: Any) -> None:
        nonlocal marks
        gc.collect()
        if frames:
            with (directory / f"snapshot-{marks}").open("wb") as out:
                pickle.dump(tracemalloc.take_snapshot(), out)
        (directory / f"mark-{marks}").touch()
        marks += 1

    signal.signal(signal.SIGUSR1, mark)
    # The configuration `hemisphere serve` runs with (its WebSocket protocol, no compression).
    sock = listen("127.0.0.1", port)
    config = uvicorn_config(app, sock, Shutdown(None, timeout=10))
    uvicorn.Server(config).run(sockets=[sock])


# --- the client -----------------------------------------------------------------------------


async def subscribed(port: int, issuer: LocalIssuer, customer: str) -> Any:
    """An AppSync real-time connection with one acknowledged subscription, as `customer`."""
    token = issuer.token(customer)
    header = {"host": f"127.0.0.1:{port}", "Authorization": token}
    encoded = base64.b64encode(json.dumps(header).encode()).decode()
    socket = await websockets.connect(
        f"ws://127.0.0.1:{port}/graphql/realtime?header={encoded}&payload=e30=",
        subprotocols=[Subprotocol("graphql-ws")],
        open_timeout=300,
    )
    await socket.send(json.dumps({"type": "connection_init"}))
    await _expect(socket, "connection_ack")
    data = json.dumps({"query": SUBSCRIPTION, "variables": {"c": customer}})
    start = {"data": data, "extensions": {"authorization": header}}
    await socket.send(json.dumps({"id": "1", "type": "start", "payload": start}))
    await _expect(socket, "start_ack")
    return socket


async def _expect(socket: Any, kind: str) -> None:
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), 300))
        if message["type"] == kind:
            return
        if message["type"] != "ka":
            raise RuntimeError(f"expected {kind}, got {message}")


def mark(pid: int, directory: Path, n: int) -> None:
    os.kill(pid, signal.SIGUSR1)
    while not (directory / f"mark-{n}").exists():
        time.sleep(0.05)


async def measure(pid: int, port: int, directory: Path, args: Any) -> tuple[int, int]:
    issuer = LocalIssuer(directory, ISSUER_URL)
    slots = asyncio.Semaphore(20 if args.trace else 200)

    async def one(customer: str) -> Any:
        async with slots:
            return await subscribed(port, issuer, customer)

    warm = [await one(f"c-warm-{i}") for i in range(WARM_UP)]
    await asyncio.sleep(1)
    mark(pid, directory, 0)
    before = psutil.Process(pid).memory_info().rss
    idle = await asyncio.gather(*(one(f"c-idle-{i}") for i in range(args.connections)))
    await asyncio.sleep(2)  # let the instance settle (allocations, first keep-alives)
    mark(pid, directory, 1)
    after = psutil.Process(pid).memory_info().rss
    await asyncio.gather(*(s.close() for s in [*idle, *warm]), return_exceptions=True)
    return before, after


def report_trace(directory: Path, n: int, top: int) -> None:
    def load(i: int) -> tracemalloc.Snapshot:
        with (directory / f"snapshot-{i}").open("rb") as source:
            snapshot: tracemalloc.Snapshot = pickle.load(source)
            return snapshot

    stats = load(1).compare_to(load(0), "traceback")
    total = sum(s.size_diff for s in stats)
    print(f"\n# traced Python allocations alive: {total / n:,.0f} B per connection")

    def where(frame: tracemalloc.Frame) -> str:
        name = frame.filename
        for prefix in (str(REPO) + "/", *(p for p in sys.path if p.endswith("-packages"))):
            name = name.removeprefix(prefix.rstrip("/") + "/")
        return f"{name.split('/lib/python3')[-1].lstrip('.0123456789/')}:{frame.lineno}"

    print(f"\n# top {top} allocation sites (B and blocks per connection; innermost frames first)")
    for stat in stats[:top]:
        frames = [where(f) for f in stat.traceback][::-1][:3]
        print(f"{stat.size_diff / n:7,.0f} B {stat.count_diff / n:5.1f}  {' <- '.join(frames)}")
    owners: collections.Counter[str] = collections.Counter()
    for stat in stats:
        frames = [where(f) for f in stat.traceback][::-1]
        ours = [f for f in frames if f.startswith(PROJECT)]
        owners[ours[0] if ours else f"(library only) {frames[0]}"] += stat.size_diff
    print("\n# by the innermost frame of this repository (B per connection)")
    for owner, size in owners.most_common(top):
        print(f"{size / n:7,.0f} B  {owner}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--trace", type=int, default=0, help="tracemalloc frames (0: off)")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--keep", default="", help="a directory to leave the snapshots in")
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), Path(args.serve[1]), args.trace)
        return 0

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.connections + WARM_UP + 100:
        print(f"# the open-files limit is {hard}: too few for {args.connections}", file=sys.stderr)
        return 2
    with Processes() as procs, tempfile.TemporaryDirectory(prefix="hemisphere-idle-") as tmp:
        directory = Path(args.keep or tmp)
        directory.mkdir(parents=True, exist_ok=True)
        for old in [*directory.glob("mark-*"), *directory.glob("snapshot-*")]:
            old.unlink()
        LocalIssuer(directory, ISSUER_URL)  # its key, before either side reads it
        port = free_port()
        log = directory / "instance.log"
        command = [sys.executable, __file__, "--trace", str(args.trace), "--serve", str(port)]
        command.append(str(directory))
        instance = procs.start(
            "instance", command, log=log, cpu=SERVER_CPU, env={**os.environ}, cwd=REPO
        )
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            if time.monotonic() > deadline or instance.poll() is not None:
                print(f"# the instance did not start; {log}:\n{tail(log)}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        os.sched_setaffinity(0, {CLIENT_CPU})
        before, after = asyncio.run(measure(instance.pid, port, directory, args))
        n = args.connections
        print(
            f"{n} idle connections (1 subscription each): RSS {before / 2**20:.1f} -> "
            f"{after / 2**20:.1f} MB = {(after - before) / 1024 / n:.1f} KB per connection"
            + ("  (tracemalloc on: RSS inflated)" if args.trace else "")
        )
        if args.trace:
            report_trace(directory, n, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
