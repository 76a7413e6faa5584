"""Subscription delivery benchmark: Hemisphere's fan-out, and the peer side by side.

    .venv/bin/python bench/subscriptions.py [--subscribers 1,1000,10000] [--changes 100]
        [--hot 1000] [--burst 100] [--skip-peer] [--json OUT]

One API instance (tests/support/fanout_runner: create_app as bootstrap wires it, with the Redis
broker and the region's stream publisher, served as `hemisphere serve` serves it) on core 0;
PostgreSQL, the local AWS endpoint (moto), Redis and this client on core 1. Redis is
REDIS_URL's or a redis-server of our own; PostgreSQL is DATABASE_URL's (a database of our own
on it) or an embedded one.

First the peer's own tool (../shared/peers/appsync-sim/sublat.py beside this repository, or
$PEER_DIR; gql AppSync clients subscribed with IAM, publishOrder → receipt, 1 and 100
subscribers) drives Hemisphere, then amplify-appsync-simulator (which it starts itself); the
ratio is printed at the end. Then, for each count N of
subscribers on the instance (1 measured AppSync client, gql's AppSyncWebsocketsTransport, plus
N-1 idle connections subscribed to other customers):
- stream: latency from the projection write (DynamoDB PutItem of a new order version, at a
  random moment of the publisher's poll cycle) to the measured client's receipt: table
  stream → publisher (polls every POLL s) → publishOrder → Redis → instance → WebSocket;
- publish: latency from a signed publishOrder POST to the receipt (the fan-out alone);
- the instance's RSS before and after opening the idle connections, per connection.
Last, --hot connections subscribed to one customer receive --burst publishOrder mutations
sent 4 at a time: messages delivered per second.

Contract v2 keeps orders from the API key: this script's own subscribers act as the customer
they subscribe to, with a token of a development issuer it runs itself (bench/identity.py:
the instance is not `hemisphere serve`, so it serves the key set on a port of its own).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from procs import Processes, free_port, tail, unwind_on_signals

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))  # tests.support: the runner, until bootstrap wires the fan-out

import websockets  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402
from gql import Client, GraphQLRequest  # noqa: E402
from gql.transport.appsync_auth import AppSyncJWTAuthentication  # noqa: E402
from gql.transport.appsync_websockets import AppSyncWebsocketsTransport  # noqa: E402
from identity import issuer_on_a_port  # noqa: E402
from websockets.typing import Subprotocol  # noqa: E402

from adapters.appsync import AppSyncPublicationSink  # noqa: E402
from adapters.dynamodb.client import StaticCredentials, create_client  # noqa: E402
from adapters.dynamodb.table import ensure_table  # noqa: E402
from adapters.dynamodb.writer import DynamoProjectionWriter  # noqa: E402
from domain.events import OrderChanged  # noqa: E402
from hemisphere.local_issuer import CustomerTokens  # noqa: E402
from schema.publish_documents import publication_documents  # noqa: E402
from subscriptions.stream_publisher import PublisherTimings  # noqa: E402
from tests.support.builders import order  # noqa: E402
from tests.support.fanout_redis import redis_executable  # noqa: E402

# The peers live beside the repository (../shared/peers), wherever it is checked out (#9).
PEERS = Path(__file__).resolve().parents[1].parent / "shared" / "peers"
PEER_DIR = Path(os.environ.get("PEER_DIR") or PEERS / "appsync-sim")
SERVER_CPU, CLIENT_CPU = 0, 1
API_KEY = "da2-benchbenchbenchbenchbench"
AKID, SECRET = "AKIASUBSCRIPTIONBENCH", "subscription-bench-secret"
LOCAL_AWS = StaticCredentials("hemisphere-local", "hemisphere-local")
REGION = "us-east-1"
POLL = PublisherTimings().poll_interval  # what bootstrap's publisher runs with
SUBSCRIPTION = """subscription($c: ID) { onOrderChanged(customerId: $c) {
  id customerId status version total { amount currency } updatedAt } }"""


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (as sublat.py computes it)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


# --- backends and the instance ----------------------------------------------------------------


def wait_until(check: Any, what: str, log: Path, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not up within {within:.0f}s; log {log}:\n{tail(log)}")


@contextlib.contextmanager
def postgres(tmp: Path) -> Iterator[str]:
    url = os.environ.get("DATABASE_URL")
    if not url:
        from hemisphere.localstack import embedded_postgres

        with embedded_postgres(tmp / "pg") as embedded:
            yield embedded
        return
    import asyncpg

    name = f"hemisphere_bench_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Instance:
    pid: int
    port: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    def rss(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)


def start_stack(procs: Processes, tmp: Path, issuer: str) -> tuple[Instance, str, str]:
    """Backends on the client's core, the instance on its own (trusting the tokens of
    `issuer`); returns it, moto's URL and the table name."""
    moto_port = free_port()
    moto_url = f"http://127.0.0.1:{moto_port}"
    moto_log = tmp / "moto.log"
    procs.start(
        "moto",
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
        log=moto_log,
        cpu=CLIENT_CPU,
        env={**os.environ, "MOTO_PORT": str(moto_port)},
    )
    wait_until(lambda: httpx.get(f"{moto_url}/moto-api/data.json").is_success, "moto", moto_log)

    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        redis_port = free_port()
        redis_log = tmp / "redis.log"
        procs.start(
            "redis",
            [redis_executable(), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""],
            log=redis_log,
            cpu=CLIENT_CPU,
        )
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        time.sleep(0.3)

    database_url = procs.enter_context(postgres(tmp))
    table = f"bench-{uuid.uuid4().hex[:8]}"
    port = free_port()
    log = tmp / "hemisphere.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "AWS_ENDPOINT_URL": moto_url,
        "REDIS_URL": redis_url,
        "AWS_ACCESS_KEY_ID": LOCAL_AWS.access_key_id,
        "AWS_SECRET_ACCESS_KEY": LOCAL_AWS.secret_access_key,
        "HEMISPHERE_REGION": REGION,
        "HEMISPHERE_TABLE": table,
        "HEMISPHERE_API_KEYS": API_KEY,
        "HEMISPHERE_IAM_CREDENTIALS": f"{AKID}:{SECRET}",
        "HEMISPHERE_OIDC_ISSUER": issuer,
        "HEMISPHERE_TOKEN_SECRET": "subscription-bench",
        "HEMISPHERE_LOG_LEVEL": "WARNING",
        # This benchmark writes the projections itself: no relay, no saga workers.
        "HEMISPHERE_RUN_WORKERS": "false",
        "HEMISPHERE_PAYMENTS_URL": "http://127.0.0.1:9",
    }
    process = procs.start(
        "hemisphere",
        [sys.executable, "-m", "tests.support.fanout_runner", "--port", str(port)],
        log=log,
        cpu=SERVER_CPU,
        env=env,
        cwd=REPO,
    )
    health = f"http://127.0.0.1:{port}/health"
    wait_until(lambda: httpx.get(health).status_code == 200, "hemisphere", log)
    return Instance(process.pid, port), moto_url, table


# --- clients ----------------------------------------------------------------------------------


def _header(port: int, token: str) -> dict[str, str]:
    """A customer's headers, as gql's AppSyncJWTAuthentication sends them (the raw JWT)."""
    return {"host": f"127.0.0.1:{port}", "Authorization": token}


class RealtimeConnection:
    """One AppSync real-time connection with one subscription (raw `websockets`: thousands of
    gql clients would measure the client more than the server). Counts what it receives."""

    def __init__(self, socket: Any, counter: Counter) -> None:
        self._socket = socket
        self._counter = counter
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(
        cls, port: int, customer: str, token: str, counter: Counter
    ) -> RealtimeConnection:
        """Connected and subscribed to `customer`'s orders as that customer (`token`)."""
        header = base64.b64encode(json.dumps(_header(port, token)).encode()).decode()
        url = f"ws://127.0.0.1:{port}/graphql/realtime?header={header}&payload=e30="
        socket = await websockets.connect(
            url, subprotocols=[Subprotocol("graphql-ws")], max_size=2**22
        )
        await socket.send(json.dumps({"type": "connection_init"}))
        await cls._expect(socket, "connection_ack")
        data = json.dumps({"query": SUBSCRIPTION, "variables": {"c": customer}})
        start = {"data": data, "extensions": {"authorization": _header(port, token)}}
        await socket.send(json.dumps({"id": "1", "type": "start", "payload": start}))
        await cls._expect(socket, "start_ack")
        return cls(socket, counter)

    @staticmethod
    async def _expect(socket: Any, kind: str) -> None:
        while True:
            message = json.loads(await asyncio.wait_for(socket.recv(), 30))
            if message.get("type") == kind:
                return
            if message.get("type") != "ka":
                raise RuntimeError(f"expected {kind}, got {message}")

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self._socket:
                if '"data"' in raw and json.loads(raw).get("type") == "data":
                    self._counter.add()

    async def close(self) -> None:
        self._reader.cancel()
        await self._socket.close()


@dataclass
class Counter:
    target: int = 0
    count: int = 0
    last: float = 0.0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self) -> None:
        self.count += 1
        self.last = time.perf_counter()
        if self.target and self.count >= self.target:
            self.done.set()


async def open_many(
    port: int, customers: list[str], tokens: CustomerTokens, counter: Counter
) -> list[RealtimeConnection]:
    slots = asyncio.Semaphore(200)

    async def one(customer: str) -> RealtimeConnection:
        async with slots:
            return await RealtimeConnection.open(port, customer, tokens.token(customer), counter)

    return list(await asyncio.gather(*(one(c) for c in customers)))


class MeasuredSubscriber:
    """gql's AppSync client (as sublat.py uses): keeps (order id, version) → receipt time."""

    CUSTOMER = "c-bench"

    def __init__(self, port: int, tokens: CustomerTokens) -> None:
        self.port = port
        self.token = tokens.token(self.CUSTOMER)
        self.arrivals: dict[tuple[str, int], float] = {}
        self.arrived = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        auth = AppSyncJWTAuthentication(host=f"127.0.0.1:{self.port}", jwt=self.token)
        transport = AppSyncWebsocketsTransport(
            url=f"ws://127.0.0.1:{self.port}/graphql/realtime", auth=auth, connect_timeout=30
        )
        request = GraphQLRequest(SUBSCRIPTION, variable_values={"c": self.CUSTOMER})
        async with Client(transport=transport, fetch_schema_from_transport=False) as session:
            async for result in session.subscribe(request):
                change = result["onOrderChanged"]
                self.arrivals.setdefault((change["id"], change["version"]), time.perf_counter())
                self.arrived.set()

    async def receipt(self, key: tuple[str, int], within: float = 10.0) -> float | None:
        deadline = time.perf_counter() + within
        while key not in self.arrivals:
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or self.task.done():
                return None
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)
        return self.arrivals[key]


# --- the measurements -------------------------------------------------------------------------


@dataclass
class Row:
    subscribers: int
    stream_ms: list[float] = field(default_factory=list)
    publish_ms: list[float] = field(default_factory=list)
    missed: int = 0
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0

    @property
    def kb_per_connection(self) -> float:
        idle = self.subscribers - 1
        return (self.rss_after_mb - self.rss_before_mb) * 1024 / idle if idle else math.nan


class Bench:
    def __init__(
        self,
        instance: Instance,
        writer: DynamoProjectionWriter,
        tokens: CustomerTokens,
        args: Any,
    ) -> None:
        self.instance = instance
        self.tokens = tokens
        self.writer = writer
        self.args = args
        self.sink = AppSyncPublicationSink(
            instance.http_url,
            Credentials(AKID, SECRET),
            REGION,
            documents=publication_documents(),
            timeout=30,
        )
        self.version = 0

    async def write(self) -> tuple[tuple[str, int], float]:
        """A new version of the measured order, written to the projection table."""
        self.version += 1
        key = ("o-stream", self.version)
        started = time.perf_counter()
        await self.writer.write(
            [OrderChanged(order(key[0], customer_id="c-bench", version=key[1]))]
        )
        return key, started

    async def publish(self, order_id: str, customer: str = "c-bench") -> float:
        started = time.perf_counter()
        await self.sink.publish(order(order_id, customer_id=customer))
        return started

    async def row(self, subscriber: MeasuredSubscriber, n: int) -> Row:
        row = Row(n)
        await asyncio.sleep(1)
        row.rss_before_mb = self.instance.rss() / 2**20
        idle = await open_many(
            self.instance.port, [f"c-idle-{n}-{i}" for i in range(n - 1)], self.tokens, Counter()
        )
        await asyncio.sleep(2)  # let the instance settle (allocations, ka timers)
        row.rss_after_mb = self.instance.rss() / 2**20
        try:
            for _ in range(self.args.changes):
                # Changes arrive at random moments of the publisher's poll cycle; writing right
                # after a receipt would always land just after a poll and wait a whole one.
                await asyncio.sleep(random.uniform(0, POLL))
                key, started = await self.write()
                arrived = await subscriber.receipt(key)
                if arrived is None:
                    row.missed += 1
                else:
                    row.stream_ms.append((arrived - started) * 1000)
            for i in range(self.args.changes):
                order_id = f"o-publish-{n}-{i}"
                started = await self.publish(order_id)
                arrived = await subscriber.receipt((order_id, 1))
                if arrived is None:
                    row.missed += 1
                else:
                    row.publish_ms.append((arrived - started) * 1000)
        finally:
            await asyncio.gather(*(c.close() for c in idle), return_exceptions=True)
        return row

    async def throughput(self) -> dict[str, float]:
        counter = Counter(target=self.args.hot * self.args.burst)
        hot = await open_many(self.instance.port, ["c-hot"] * self.args.hot, self.tokens, counter)
        await asyncio.sleep(1)
        slots = asyncio.Semaphore(4)

        async def send(i: int) -> None:
            async with slots:
                await self.publish(f"o-hot-{i}", customer="c-hot")

        started = time.perf_counter()
        await asyncio.gather(*(send(i) for i in range(self.args.burst)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(counter.done.wait(), 120)
        elapsed = (counter.last or time.perf_counter()) - started
        await asyncio.gather(*(c.close() for c in hot), return_exceptions=True)
        return {
            "subscribers": self.args.hot,
            "changes": self.args.burst,
            "delivered": counter.count,
            "expected": counter.target,
            "seconds": elapsed,
            "per_second": counter.count / elapsed if elapsed > 0 else math.nan,
        }


async def measure(
    instance: Instance, moto_url: str, table: str, tokens: CustomerTokens, args: Any
) -> dict[str, Any]:
    async with create_client(moto_url, REGION, LOCAL_AWS) as client:
        await ensure_table(client, table)
        bench = Bench(instance, DynamoProjectionWriter(client, table), tokens, args)
        subscriber = MeasuredSubscriber(instance.port, tokens)
        try:
            # Warm-up barrier: the first change the measured client receives.
            for _ in range(100):
                key, _ = await bench.write()
                if await subscriber.receipt(key, within=2) is not None:
                    break
            else:
                raise RuntimeError("the measured subscriber received nothing")
            for _ in range(10):  # first-call costs: parser caches, client pools
                key, _ = await bench.write()
                await subscriber.receipt(key)
                await bench.publish(f"o-warm-{key[1]}")
            rows = []
            for n in args.subscribers:
                rows.append(await bench.row(subscriber, n))
                print_row(rows[-1])
            hot = await bench.throughput()
        finally:
            subscriber.task.cancel()
            await bench.sink.aclose()
    return {
        "rows": [asdict(r) | {"kb_per_connection": r.kb_per_connection} for r in rows],
        "throughput": hot,
    }


def print_row(row: Row) -> None:
    print(
        f"{row.subscribers:>7} {pct(row.stream_ms, 50):10.1f} {pct(row.stream_ms, 99):10.1f} "
        f"{pct(row.publish_ms, 50):10.2f} {pct(row.publish_ms, 99):10.2f} {row.missed:>6} "
        f"{row.rss_after_mb:8.0f} {row.kb_per_connection:9.1f}",
        flush=True,
    )


# --- the peer, with its own tool --------------------------------------------------------------


def sublat(argv: list[str], out: Path) -> list[dict[str, Any]]:
    command = [
        sys.executable,
        str(PEER_DIR / "sublat.py"),
        "--subscribers",
        "1,100",
        "--mutations",
        "200",
        "--runs",
        "1",
        "--json",
        str(out),
        "--out",
        str(out.parent),
        *argv,
    ]
    # Its table goes straight to our output, row by row.
    subprocess.run(command, check=True, timeout=1800)
    return list(json.loads(out.read_text()))


def compare_with_peer(instance: Instance, tmp: Path) -> list[dict[str, Any]]:
    """sublat.py against Hemisphere, then against the simulator it starts itself. Its
    subscribers use IAM (contract v2 keeps orders from the API key), named here so that both
    runs measure the same mode whatever sublat's default: Hemisphere's pair for Hemisphere,
    sublat's example pair for the simulator (which checks no signature)."""
    print("\n# sublat.py (gql AppSync clients, publishOrder → receipt): Hemisphere, then the peer")
    ours = sublat(
        [
            "--sub-auth",
            "iam",
            "--port",
            str(instance.port),
            "--server-pid",
            str(instance.pid),
            "--api-key",
            API_KEY,
            "--access-key",
            AKID,
            "--secret-key",
            SECRET,
        ],
        tmp / "sublat-hemisphere.json",
    )
    peer = sublat(
        ["--sub-auth", "iam", "--start-sim", "--port", str(free_port())],
        tmp / "sublat-peer.json",
    )
    return [
        {"subscribers": mine["subscribers"], "hemisphere": mine, "peer": theirs}
        for mine, theirs in zip(ours, peer, strict=True)
    ]


def print_ratio(table: list[dict[str, Any]]) -> None:
    if not table:
        return
    print("\n# Hemisphere / peer, same client (sublat.py), publishOrder → receipt")
    print(
        f"{'subs':>5} {'hemisphere p50/p99 ms':>22} {'peer p50/p99 ms':>18} {'ratio p50/p99':>14}"
    )
    for row in table:
        mine, theirs = row["hemisphere"], row["peer"]
        print(
            f"{row['subscribers']:>5} {mine['p50_ms']:>10.2f} / {mine['p99_ms']:<9.2f}"
            f" {theirs['p50_ms']:>7.2f} / {theirs['p99_ms']:<8.2f}"
            f" {mine['p50_ms'] / theirs['p50_ms']:>6.2f} / {mine['p99_ms'] / theirs['p99_ms']:.2f}"
        )


# --- main -------------------------------------------------------------------------------------


def realtime_endpoint_exists(instance: Instance, tokens: CustomerTokens) -> bool:
    """Whether the instance accepts an AppSync real-time connection (a WebSocket upgrade)."""

    async def probe() -> bool:
        try:
            connection = await RealtimeConnection.open(
                instance.port, "c-probe", tokens.token("c-probe"), Counter()
            )
        except websockets.InvalidStatus:
            return False
        await connection.close()
        return True

    return asyncio.run(probe())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--subscribers", default="1,1000,10000")
    parser.add_argument("--changes", type=int, default=100, help="measured changes per row")
    parser.add_argument("--hot", type=int, default=1000, help="subscribers of the throughput test")
    parser.add_argument("--burst", type=int, default=100, help="changes of the throughput test")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    args.subscribers = [int(n) for n in args.subscribers.split(",") if n]

    # 10,000 connections: a descriptor each here and in the server (which inherits this).
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    needed = max([*args.subscribers, args.hot]) + 1000
    if hard < needed:
        print(f"# the open-files limit is {hard}; {needed} are needed", file=sys.stderr)
        return 2

    with (
        unwind_on_signals(),
        Processes() as procs,
        tempfile.TemporaryDirectory(prefix="hemisphere-sublat-") as tmp_dir,
    ):
        tmp = Path(tmp_dir)
        issuer = procs.enter_context(issuer_on_a_port(tmp / "issuer"))
        tokens = CustomerTokens(issuer)
        instance, moto_url, table = start_stack(procs, tmp, issuer.issuer)
        if not realtime_endpoint_exists(instance, tokens):
            print("# /graphql/realtime is not served yet (AppSync real-time): nothing to measure")
            return 3
        os.sched_setaffinity(0, {CLIENT_CPU})
        print(
            f"# one instance on core {SERVER_CPU} (pid {instance.pid}); client, Redis, moto and "
            f"PostgreSQL on core {CLIENT_CPU}; publisher poll {POLL} s; "
            f"loadavg {' '.join(Path('/proc/loadavg').read_text().split()[:3])}"
        )
        # The peer first, while our instance is as fresh as the simulator it is compared with
        # (10,000 connections leave a heap whose collections show in later latencies).
        peer = [] if args.skip_peer else compare_with_peer(instance, tmp)
        print(
            f"\n# Hemisphere's fan-out: one measured gql AppSync subscriber + idle connections\n"
            f"{'subs':>7} {'stream p50':>10} {'p99 ms':>10} {'publish p50':>10} {'p99 ms':>10} "
            f"{'missed':>6} {'RSS MB':>8} {'KB/conn':>9}"
        )
        results = asyncio.run(measure(instance, moto_url, table, tokens, args))
        results["peer"] = peer
        hot = results["throughput"]
        print(
            f"\nthroughput: {hot['subscribers']} subscribers x {hot['changes']} changes: "
            f"{hot['delivered']}/{hot['expected']} delivered in {hot['seconds']:.2f} s = "
            f"{hot['per_second']:.0f} messages/s"
        )
        print_ratio(peer)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
