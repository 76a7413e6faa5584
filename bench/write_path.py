"""Write-path benchmark: checkout sagas on the local stack of `hemisphere serve`.

    .venv/bin/python bench/write_path.py [--duration 30] [--concurrency 16] [--warmup 5]
        [--sample-every 2] [--confirm-timeout 30] [--calibrate 2] [--pace answered|final]
        [--json OUT] [--keep]

One `hemisphere serve` on a temporary --data-dir (embedded PostgreSQL unless DATABASE_URL is
set, moto as the local AWS endpoint, the simulated card provider), nothing pinned: the whole
stack shares the machine's cores, as it would on a 2-core host. The load generator runs in
this process (httpx.AsyncClient, one task per client) and so does the latency watcher; their
CPU is reported as `bench`.

Prints:

1. checkouts accepted per second and orders CONFIRMED per second in the measured window,
   with `--concurrency` closed-loop clients (fresh idempotencyKey, tok_visa, one random
   in-stock product of p-0001..p-0240 with quantity 1, a random customer of c-0001..c-0050,
   sent with that customer's token: contract v2 keeps checkouts from the API key);
2. the latency from a checkout's response to CONFIRMED visible through `order(id)`, for a
   sample of the window's orders: one watcher asks PostgreSQL every ~10 ms which of them are
   final, and order(id) about those only (each order read costs moto CPU; one request per
   customer, with its token), and what its polls cost;
3. the CPU of moto, serve, PostgreSQL and the card simulator over the window, and the split
   of the confirmation latency between Step Functions (moto) and the worker's steps, from
   moto's execution histories and the orders' status timestamps.

See bench/README.md for how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import httpx
import psutil
import serve_parts
from identity import serve_tokens
from procs import (
    CLK_TCK,
    CpuSnapshot,
    CpuUsage,
    Processes,
    child_with,
    cores_busy_seconds,
    find_pyspy,
    free_port,
    hemisphere_argv,
    process_cpu_seconds,
    serve_env,
    unwind_on_signals,
    wait_for_line,
    wait_http,
)
from read_path import BANNER, stop_leftovers

from hemisphere.local_issuer import CustomerTokens

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CUSTOMERS = [f"c-{n:04d}" for n in range(1, 51)]
PRODUCT_ID = re.compile(r"^p-(\d{4})$")
SEEDED_PRODUCTS = 240
PAYMENT_TOKEN = "tok_visa"
# The checkout saga's forward steps (workflows/checkout.asl.json), in order, and the status
# each one writes: its timestamp is PostgreSQL's now() of the step's transaction, so it marks
# when the worker began the step (the payment steps write theirs in a second transaction,
# after the card provider answered). UpdateCustomer writes none.
STEPS: tuple[tuple[str, str | None], ...] = (
    ("CreateOrder", "PENDING"),
    ("ReserveInventory", "RESERVED"),
    ("AuthorizePayment", "AUTHORIZED"),
    ("CapturePayment", "CAPTURED"),
    ("UpdateCustomer", None),
    ("ConfirmOrder", "CONFIRMED"),
)
FINAL = ("CONFIRMED", "FAILED", "CANCELLED")
ORDER_STATUSES = ("PENDING", "RESERVED", "AUTHORIZED", "CAPTURED", *FINAL)
MAX_KEYS_PER_POLL = 100  # one BatchGetItem
# GetQueueAttributes costs moto a scan of the queue: not too often.
QUEUE_SAMPLE_SECONDS = 5.0
IRQ = "(irq+softirq)"  # kernel time charged to no process, in CpuSnapshot.processes
STACK = ("moto", "serve", "postgres", "payments")  # what `hemisphere serve` runs

CHECKOUT = "mutation($input: CheckoutInput!) { checkout(input: $input) { id status } }"
CATALOG = (
    "query($t: String) { products(limit: 100, nextToken: $t) { items { id available } nextToken } }"
)
ORDER_FIELDS = "status history { status at }"

# One clock for every timestamp of this process: the wall clock (to compare with moto's and
# PostgreSQL's), advanced by the monotonic counter (so that durations never jump).
_EPOCH = time.time() - time.perf_counter()


def clock() -> float:
    return _EPOCH + time.perf_counter()


class BenchError(RuntimeError):
    pass


class Throttled(BenchError):
    """The checkout was refused for load (ThrottlingException): retry after the hint."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --- the stack ----------------------------------------------------------------------------


@dataclass
class Stack:
    url: str
    api_key: str  # the catalog's (public) key
    tokens: CustomerTokens  # customer data: each customer's token (contract v2)
    data_dir: Path
    pids: dict[str, int]  # serve, moto, payments
    postmaster: int | None  # the embedded PostgreSQL (None: DATABASE_URL is external)
    aws: dict[str, str]  # <data-dir>/stack.json: DATABASE_URL, the AWS endpoint, the table
    watcher_backend: int | None = None  # the PostgreSQL backend of the latency watcher

    def aws_client(self, service: str) -> Any:
        # The stubs want a literal service name.
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.aws["AWS_ENDPOINT_URL"],
            # serve's own choice of region (hemisphere/settings.py)
            region_name=os.environ.get("HEMISPHERE_REGION")
            or os.environ.get("AWS_REGION")
            or "us-east-1",
            aws_access_key_id=self.aws["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.aws["AWS_SECRET_ACCESS_KEY"],
        )


def start_stack(procs: Processes, workdir: Path, **settings: str) -> Stack:
    """`hemisphere serve` as read_path.py starts it, but unpinned, with `settings` added to
    its environment; its children found with psutil, its PostgreSQL from postmaster.pid
    (pg_ctl daemonizes it: not a child of serve)."""
    data_dir = workdir / "hemisphere"
    log = workdir / "hemisphere.log"
    port = free_port()
    env = serve_env(**settings)
    embedded_postgres = "DATABASE_URL" not in env
    serve_args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)]
    argv = hemisphere_argv(*serve_args)
    leftovers: dict[str, int] = {}
    # Registered first, so it runs after serve has stopped (or failed to stop) its children.
    procs.callback(stop_leftovers, leftovers, data_dir, embedded_postgres)
    print(f"# starting hemisphere serve on :{port} (data in {data_dir}) ...", flush=True)
    process = procs.start(
        "hemisphere serve",
        argv,
        log=log,
        env=env,
        cwd=REPO,
        stop_signal=signal.SIGINT,
        stop_timeout=60,
    )
    wait_for_line(log, BANNER, process, timeout=300)
    moto = child_with(process.pid, "moto.server")
    payments = child_with(process.pid, "hemisphere.payments_sim")
    if moto is None or payments is None:
        raise BenchError(f"serve (pid {process.pid}) lacks its moto or payments child")
    leftovers["moto"] = moto
    postmaster = None
    pidfile = data_dir / "postgres" / "postmaster.pid"
    if embedded_postgres and pidfile.exists():
        postmaster = int(pidfile.read_text().split("\n", 1)[0])
    api_key = (data_dir / "api-key").read_text().strip()
    aws = json.loads((data_dir / "stack.json").read_text())
    url = f"http://127.0.0.1:{port}/graphql"
    wait_http(url, api_key, process, log, timeout=30)
    pids = {"serve": process.pid, "moto": moto, "payments": payments}
    return Stack(url, api_key, serve_tokens(data_dir), data_dir, pids, postmaster, aws)


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and all its descendants, the exited ones included (their time is in
    their parent's cutime/cstime once reaped): PostgreSQL's postmaster and its backends."""
    total = 0.0
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
    return total


def cpu_snapshot(stack: Stack) -> CpuSnapshot:
    processes = {name: process_cpu_seconds(pid) for name, pid in stack.pids.items()}
    if stack.postmaster is not None:
        processes["postgres"] = tree_cpu_seconds(stack.postmaster)
        if stack.watcher_backend is not None:
            with contextlib.suppress(OSError):
                watcher = process_cpu_seconds(stack.watcher_backend)
                processes["postgres"] -= watcher
                processes["watcher backend"] = watcher
    processes["bench"] = process_cpu_seconds(os.getpid())
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()  # "cpu user nice ..."
    processes[IRQ] = (int(fields[6]) + int(fields[7])) / CLK_TCK
    return CpuSnapshot(time.monotonic(), processes, cores_busy_seconds())


def others_cpu(exclude: set[int]) -> dict[tuple[int, str], float]:
    """CPU seconds of every other process on the machine (to name what disturbed a run)."""
    found: dict[tuple[int, str], float] = {}
    for proc in psutil.process_iter(["pid", "name", "cpu_times"]):
        info = proc.info
        if info["pid"] in exclude or info["cpu_times"] is None:
            continue
        found[(info["pid"], info["name"] or "?")] = (
            info["cpu_times"].user + info["cpu_times"].system
        )
    return found


def stack_pids(stack: Stack) -> set[int]:
    pids = {os.getpid(), *stack.pids.values()}
    if stack.postmaster is not None:
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(stack.postmaster)
            pids |= {root.pid, *(c.pid for c in root.children(recursive=True))}
    return pids


# --- GraphQL -------------------------------------------------------------------------------


class GraphQL:
    """Catalog reads with the API key; anything of a customer's (`customer`) with that
    customer's token, as the customer's own client sends it."""

    def __init__(self, stack: Stack, connections: int) -> None:
        self._url = stack.url
        self._tokens = stack.tokens
        self._http = httpx.AsyncClient(
            headers={"x-api-key": stack.api_key},
            timeout=httpx.Timeout(60.0),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __call__(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        customer: str | None = None,
    ) -> Any:
        """The `data` of the answer; raises BenchError on an HTTP or GraphQL error."""
        response = await self._http.post(
            self._url,
            json={"query": query, "variables": dict(variables or {})},
            # A token takes precedence over the key (hemisphere/http/authn.py), as in AppSync.
            headers=self._tokens.headers(customer) if customer is not None else None,
        )
        try:
            doc = response.json()
        except ValueError:
            doc = None
        if isinstance(doc, dict) and doc.get("errors"):
            first = doc["errors"][0]
            info = first.get("errorInfo") or {}
            if first.get("errorType") == "ThrottlingException" and info.get("retryable"):
                raise Throttled(first.get("message", ""), float(info.get("retryAfterSeconds", 1)))
        if response.status_code != 200 or not isinstance(doc, dict) or doc.get("errors"):
            raise BenchError(f"HTTP {response.status_code}: {response.text[:300]}")
        return doc["data"]

    async def orders(self, owners: Mapping[str, str]) -> dict[str, dict[str, Any] | None]:
        """Orders (id -> its customer): one request per customer, with its token (a token
        reads its own customer's orders only), all at once; each request's orders are
        aliases, which serve batches into one BatchGetItem."""
        by_customer: dict[str, list[str]] = {}
        for order_id, customer in owners.items():
            by_customer.setdefault(customer, []).append(order_id)
        answers = await asyncio.gather(
            *(self._orders_of(customer, ids) for customer, ids in by_customer.items())
        )
        return {o: order for answer in answers for o, order in answer.items()}

    async def _orders_of(
        self, customer: str, ids: Sequence[str]
    ) -> dict[str, dict[str, Any] | None]:
        fields = " ".join(
            f"o{i}: order(id: {json.dumps(o)}) {{ {ORDER_FIELDS} }}" for i, o in enumerate(ids)
        )
        data = await self("query { " + fields + " }", customer=customer)
        return {o: data[f"o{i}"] for i, o in enumerate(ids)}


async def in_stock(gql: GraphQL) -> dict[str, int]:
    """p-0001..p-0240 with their available stock, from the projection."""
    stock: dict[str, int] = {}
    token: str | None = None
    while True:
        page = (await gql(CATALOG, {"t": token}))["products"]
        for item in page["items"]:
            match = PRODUCT_ID.match(item["id"])
            if match and 1 <= int(match.group(1)) <= SEEDED_PRODUCTS and item["available"] > 0:
                stock[item["id"]] = int(item["available"])
        token = page["nextToken"]
        if not token:
            return stock


def parse_at(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def status_times(order: Mapping[str, Any]) -> dict[str, float]:
    """Status -> when it was entered (PostgreSQL's now() of the step's transaction)."""
    return {h["status"]: parse_at(h["at"]) for h in order["history"]}


# --- the load ------------------------------------------------------------------------------


@dataclass
class Placed:
    order_id: str
    customer: str
    sent: float
    answered: float


@dataclass
class Watched:
    customer: str  # whose token reads it
    answered: float  # the checkout's response
    seen: float | None = None  # the poll that first saw the order final
    status: str | None = None  # once final
    latest: str = "not created yet"  # its status in PostgreSQL, as the watcher last saw it
    history: dict[str, float] = field(default_factory=dict)


@dataclass
class Load:
    window: tuple[float, float] = (0.0, 0.0)  # clock() at the start and end of the window
    placed: list[Placed] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    throttled: list[float] = field(default_factory=list)  # clock() of each ThrottlingException
    watched: dict[str, Watched] = field(default_factory=dict)
    polls: int = 0  # the watcher's polls of order(id) in the window
    poll_keys: int = 0  # and the orders they asked for
    poll_requests: int = 0  # and the requests they took (one per customer)
    poll_periods: list[float] = field(default_factory=list)
    queue_samples: list[tuple[int, int]] = field(default_factory=list)  # (waiting, in flight)
    sampled_at_end: dict[str, int] = field(default_factory=dict)  # status -> sampled orders
    loadavg: tuple[float, float, float] = (0.0, 0.0, 0.0)  # at the window's end
    cpu: CpuUsage | None = None
    others: list[tuple[str, float]] = field(default_factory=list)
    serve_stacks: Path | None = None  # --profile: py-spy's samples of serve over the window

    def in_window(self) -> list[Placed]:
        start, end = self.window
        return [p for p in self.placed if start <= p.answered < end]


class Clients:
    """`concurrency` closed-loop clients: checkout, wait for the answer (with a `paced_by`
    watcher: for the order to be final, as a shopper who waits for the confirmation), checkout
    again."""

    def __init__(
        self,
        gql: GraphQL,
        stock: dict[str, int],
        load: Load,
        seed: int,
        paced_by: Watcher | None = None,
    ) -> None:
        self._gql = gql
        self._stock = stock
        self._load = load
        self._rng = random.Random(seed)
        self._paced_by = paced_by
        self.stop = asyncio.Event()
        self.on_placed: list[Placed] = []

    def _product(self) -> str:
        products = [p for p, n in self._stock.items() if n > 0]
        if not products:
            raise BenchError("every product is sold out")
        product = self._rng.choice(products)
        self._stock[product] -= 1
        return product

    async def run_one(self) -> None:
        while not self.stop.is_set():
            product = self._product()
            customer = self._rng.choice(CUSTOMERS)
            command = {
                "customerId": customer,
                "lines": [{"productId": product, "quantity": 1}],
                "paymentToken": PAYMENT_TOKEN,
                "idempotencyKey": uuid.uuid4().hex,
            }
            sent = clock()
            try:
                data = await self._gql(CHECKOUT, {"input": command}, customer=customer)
                order_id = str(data["checkout"]["id"])
            except Throttled as refusal:
                # As a well-behaved client: wait the hint (with jitter), then retry.
                self._load.throttled.append(clock())
                self._stock[product] += 1
                await asyncio.sleep(refusal.retry_after * self._rng.uniform(1.0, 1.5))
                continue
            except (BenchError, httpx.HTTPError, KeyError, TypeError) as exc:
                self._load.errors += 1
                self._load.first_error = self._load.first_error or f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.05)  # no hot loop against a server that refuses
                continue
            placed = Placed(order_id, customer, sent, clock())
            self._load.placed.append(placed)
            if self._paced_by is None:
                self.on_placed.append(placed)
                continue
            start, end = self._load.window
            self._paced_by.add(placed, measured=start <= placed.answered < end)
            await self._paced_by.final(order_id)


class Watcher:
    """Watches the sampled orders until each is final in order(id), or older than `timeout`.

    Every `interval` it asks PostgreSQL (one cheap query on its own connection) which of them
    the saga has finished, and asks the projection, through order(id), only about those: one
    query with all of them, whose BatchGetItem costs moto about 3.5 ms of CPU per order. So
    the endpoint being measured is polled only in the short time between ConfirmOrder's
    commit and the projection, yet every `interval`."""

    def __init__(
        self, gql: GraphQL, pg: asyncpg.Connection, load: Load, interval: float, timeout: float
    ) -> None:
        self._gql = gql
        self._pg = pg
        self._load = load
        self._interval = interval
        self._timeout = timeout
        self.pending: dict[str, Watched] = {}
        self._ended: dict[str, asyncio.Event] = {}  # set when a paced client's order ends
        self.done = asyncio.Event()  # no more orders will be added

    def add(self, placed: Placed, *, measured: bool = True) -> None:
        """Watch `placed` until it is final; a measured order's figures go in the report, an
        unmeasured one (a paced client's warm-up order) is only waited for."""
        watched = Watched(placed.customer, placed.answered)
        if measured:
            self._load.watched[placed.order_id] = watched
        self.pending[placed.order_id] = watched

    async def final(self, order_id: str) -> None:
        """Until the watched order `order_id` is final in order(id), or given up on."""
        ended = self._ended.setdefault(order_id, asyncio.Event())
        if order_id in self.pending:
            await ended.wait()
        self._ended.pop(order_id, None)

    def _end(self, order_id: str) -> Watched:
        ended = self._ended.get(order_id)
        if ended is not None:
            ended.set()
        return self.pending.pop(order_id)

    async def run(self) -> None:
        previous: float | None = None  # when the previous projection poll began
        while self.pending or not self.done.is_set():
            started = clock()
            for order_id in [
                o for o, w in self.pending.items() if started - w.answered > self._timeout
            ]:
                self._end(order_id)  # did not confirm in time
            asked = [o for o, w in self.pending.items() if w.latest not in FINAL]
            if asked:
                rows = await self._pg.fetch(
                    "SELECT id, status FROM orders WHERE id = ANY($1::text[])", asked
                )
                for row in rows:
                    self.pending[row["id"]].latest = row["status"]
            due = [o for o, w in self.pending.items() if w.latest in FINAL]
            if due:
                await self._poll(due[:MAX_KEYS_PER_POLL], started, previous)
                previous = started
            else:
                previous = None
            await asyncio.sleep(max(0.0, self._interval - (clock() - started)))

    async def _poll(self, ids: list[str], started: float, previous: float | None) -> None:
        owners = {o: self.pending[o].customer for o in ids}
        try:
            found = await self._gql.orders(owners)
        except (BenchError, httpx.HTTPError) as exc:
            print(f"#   watcher: a poll failed: {exc}", flush=True)
            return
        seen = clock()
        window_start, window_end = self._load.window
        if window_start <= started < window_end:
            self._load.polls += 1
            self._load.poll_keys += len(ids)
            self._load.poll_requests += len(set(owners.values()))
        if previous is not None:
            self._load.poll_periods.append(started - previous)
        for order_id, order in found.items():
            if order is not None and order["status"] in FINAL:
                watched = self._end(order_id)
                watched.seen, watched.status = seen, order["status"]
                watched.history = status_times(order)


async def sample_queue(stack: Stack, load: Load, stop: asyncio.Event) -> None:
    """Once a second: the task queue's waiting and in-flight (received, not deleted) messages."""
    attributes = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    try:
        sqs = await asyncio.to_thread(stack.aws_client, "sqs")
        name = f"{stack.aws.get('HEMISPHERE_TABLE', 'hemisphere')}-saga-tasks"
        queue_url = (await asyncio.to_thread(sqs.get_queue_url, QueueName=name))["QueueUrl"]
        while not stop.is_set():
            answer = await asyncio.to_thread(
                sqs.get_queue_attributes, QueueUrl=queue_url, AttributeNames=attributes
            )
            values = answer["Attributes"]
            load.queue_samples.append((int(values[attributes[0]]), int(values[attributes[1]])))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), QUEUE_SAMPLE_SECONDS)
    except Exception as exc:  # a figure less, not a failed run
        print(f"#   queue sampler stopped: {type(exc).__name__}: {exc}", flush=True)


async def run_load(stack: Stack, args: argparse.Namespace) -> Load:
    load = Load()
    gql = GraphQL(stack, args.concurrency + 2)
    watcher_gql = GraphQL(stack, 2)
    pg = await asyncpg.connect(stack.aws["DATABASE_URL"])
    try:
        # The watcher's own backend: its CPU is taken out of PostgreSQL's (cpu_snapshot).
        stack.watcher_backend = int(await pg.fetchval("SELECT pg_backend_pid()"))
        stock = await in_stock(gql)
        print(
            f"# {len(stock)} products in stock ({sum(stock.values())} units); "
            f"{args.concurrency} clients for a {args.warmup:g} s warm-up, then "
            f"{args.duration:g} s measured ...",
            flush=True,
        )
        watcher = Watcher(watcher_gql, pg, load, args.poll_interval, args.confirm_timeout)
        paced_by = watcher if args.pace == "final" else None
        clients = Clients(gql, stock, load, seed=args.seed, paced_by=paced_by)
        stop_sampling = asyncio.Event()
        exclude = stack_pids(stack)

        start = clock()
        load.window = (start + args.warmup, start + args.warmup + args.duration)
        tasks = [
            asyncio.create_task(clients.run_one(), name=f"client-{i}")
            for i in range(args.concurrency)
        ]
        watching = asyncio.create_task(watcher.run(), name="watcher")
        sampler: asyncio.Task[None] | None = None
        count = 0

        async def feed_watcher() -> None:
            """Hands every `sample_every`-th order answered in the window to the watcher."""
            nonlocal count
            while clients.on_placed:
                placed = clients.on_placed.pop(0)
                if load.window[0] <= placed.answered < load.window[1]:
                    if count % args.sample_every == 0:
                        watcher.add(placed)
                    count += 1

        try:
            await asyncio.sleep(max(0.0, load.window[0] - clock()))
            clients.on_placed.clear()
            profiler = start_profiler(stack, args) if args.profile else None
            before = cpu_snapshot(stack)
            others_before = others_cpu(exclude)
            sampler = asyncio.create_task(sample_queue(stack, load, stop_sampling))
            while clock() < load.window[1]:
                await feed_watcher()
                await asyncio.sleep(min(0.01, max(0.0, load.window[1] - clock())))
            after = cpu_snapshot(stack)
            others_after = others_cpu(exclude)
            if profiler is not None:
                load.serve_stacks = await finish_profiler(*profiler)
            clients.stop.set()
            stop_sampling.set()
            await feed_watcher()
            load.cpu = CpuUsage.between(before, after)
            load.loadavg = os.getloadavg()
            for watched in load.watched.values():
                now = watched.status or watched.latest
                load.sampled_at_end[now] = load.sampled_at_end.get(now, 0) + 1
            exclude |= stack_pids(stack)  # backends born during the window are ours too
            used = {
                f"{name} ({pid})": spent - others_before.get((pid, name), 0.0)
                for (pid, name), spent in others_after.items()  # born in the window: all of it
                if pid not in exclude
            }
            load.others = sorted(used.items(), key=lambda kv: -kv[1])[:3]
            print(
                f"# window over: {len(load.in_window())} checkouts answered; waiting for the "
                f"{len(watcher.pending)} sampled orders not final yet (at most "
                f"{args.confirm_timeout:g} s) ...",
                flush=True,
            )
            await asyncio.gather(*tasks)
            await sampler
            await feed_watcher()
            watcher.done.set()
            await watching
        finally:
            clients.stop.set()
            stop_sampling.set()
            watcher.done.set()
            rest = [*tasks, watching, *([sampler] if sampler else [])]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)
    finally:
        await gql.aclose()
        await watcher_gql.aclose()
        await pg.close()
        stack.watcher_backend = None
    return load


def start_profiler(
    stack: Stack, args: argparse.Namespace
) -> tuple[subprocess.Popen[bytes], Path] | None:
    """py-spy sampling serve for the window (its own CPU is not serve's); None without it."""
    out = stack.data_dir.parent / "serve-stacks.txt"
    pyspy = find_pyspy()
    if pyspy is None:
        return None
    argv = [pyspy, "record", "--pid", str(stack.pids["serve"]), "--duration"]
    argv += [f"{args.duration:.0f}", "--rate", "200", "--format", "raw", "--nonblocking"]
    process = subprocess.Popen(
        [*argv, "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return process, out


async def finish_profiler(process: subprocess.Popen[bytes], out: Path) -> Path | None:
    for _ in range(100):
        if process.poll() is not None:
            break
        await asyncio.sleep(0.1)
    else:
        process.kill()
    return out if process.returncode == 0 else None


async def final_statuses(stack: Stack, load: Load) -> dict[str, dict[str, Any] | None]:
    """Every placed order as the projection has it now."""
    gql = GraphQL(stack, 4)
    try:
        owners = [(p.order_id, p.customer) for p in load.placed]
        found: dict[str, dict[str, Any] | None] = {}
        for i in range(0, len(owners), MAX_KEYS_PER_POLL):
            batch = dict(owners[i : i + MAX_KEYS_PER_POLL])
            for attempt in range(1, 6):
                try:
                    found.update(await gql.orders(batch))
                    break
                except BenchError as exc:
                    # A loaded endpoint may time a BatchGetItem out (ServiceUnavailable,
                    # retryable): the run's figures are worth a few more seconds.
                    if attempt == 5:
                        raise
                    print(f"#   reading the final statuses failed ({exc!s:.100}); retrying")
                    await asyncio.sleep(2.0 * attempt)
        return found
    finally:
        await gql.aclose()


@dataclass
class PollPrice:
    """What a watcher poll costs each process (CPU seconds), for `keys[0]` and `keys[1]`
    orders, measured on the idle stack before the load; linear in between and beyond."""

    keys: tuple[int, int]
    cost: tuple[dict[str, float], dict[str, float]]
    polls: tuple[int, int]

    def at(self, keys: float) -> dict[str, float]:
        (k0, k1), (c0, c1) = self.keys, self.cost
        return {n: max(0.0, c0[n] + (c1[n] - c0[n]) * (keys - k0) / (k1 - k0)) for n in c0}


async def price_polls(stack: Stack, interval: float, seconds: float) -> PollPrice | None:
    """`seconds` idle, then `seconds` of polls of 4 seeded orders, then of all the seeded
    orders of distinct customers (one each of o-0001..o-0020's 14): per poll, the CPU above
    the idle rate. One order per customer, so one request per order, as in the window's
    polls (orders of 16 clients over 50 customers rarely share one). Before the load,
    because afterwards the stack is busy with the sagas still on their way."""
    gql = GraphQL(stack, 2)
    pg = await asyncpg.connect(stack.aws["DATABASE_URL"])
    try:
        seeded = [f"o-{n:04d}" for n in range(1, 21)]
        rows = await pg.fetch(
            "SELECT id, customer_id FROM orders WHERE id = ANY($1::text[]) ORDER BY id", seeded
        )
        owner_of = {str(r["customer_id"]): str(r["id"]) for r in reversed(rows)}
        owners = dict(sorted((o, c) for c, o in owner_of.items()))
        found = await gql.orders(owners)
        ids = [o for o, order in found.items() if order is not None]
        if len(ids) < 8:
            return None
        start = cpu_snapshot(stack)
        await asyncio.sleep(seconds)
        idle = CpuUsage.between(start, cpu_snapshot(stack))
        costs: list[dict[str, float]] = []
        counts: list[int] = []
        for keys in (4, len(ids)):
            start, polls = cpu_snapshot(stack), 0
            end = clock() + seconds
            while clock() < end:
                started = clock()
                await gql.orders({o: owners[o] for o in ids[:keys]})
                polls += 1
                await asyncio.sleep(max(0.0, interval - (clock() - started)))
            busy = CpuUsage.between(start, cpu_snapshot(stack))
            rate = busy.seconds / idle.seconds
            costs.append(
                {n: (busy.processes[n] - idle.processes[n] * rate) / polls for n in busy.processes}
            )
            counts.append(polls)
    finally:
        await gql.aclose()
        await pg.close()
    return PollPrice((4, len(ids)), (costs[0], costs[1]), (counts[0], counts[1]))


# --- the saga timelines --------------------------------------------------------------------


@dataclass
class Timeline:
    """One sampled order's saga, in ms, from moto's execution history (when each Task state
    was entered, its message sent to SQS, its SendTaskSuccess received) and the order's status
    timestamps (PostgreSQL's now() in the transaction that wrote each status)."""

    order_id: str
    lead: float  # the checkout's answer -> CreateOrder entered (negative: it started before)
    steps: dict[str, dict[str, float]]  # step -> segment -> ms, for the steps it went through
    # Only for an order seen CONFIRMED: the whole way, split (the parts add up to `total`).
    total: float | None = None
    sfn: float | None = None  # moto's Step Functions: entering states, sending tasks to SQS
    worker: float | None = None  # SQS to the answer, per task (last: to ConfirmOrder's txn)
    projection: float | None = None  # ConfirmOrder's transaction -> CONFIRMED seen


def execution_history(sfn: Any, machine_arn: str, order_id: str) -> list[dict[str, Any]]:
    arn = machine_arn.replace(":stateMachine:", ":execution:", 1) + f":checkout-{order_id}"
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def timeline(
    order_id: str,
    watched: Watched,
    history: Mapping[str, float],
    events: Iterable[Mapping[str, Any]],
) -> Timeline | None:
    marks: dict[str, dict[str, float]] = {}
    state: str | None = None
    for event in events:
        kind, at = str(event["type"]), event["timestamp"].timestamp()
        if kind == "TaskStateEntered":
            state = str(event["stateEnteredEventDetails"]["name"])
            marks.setdefault(state, {}).setdefault("entered", at)
        elif state is not None and kind in ("TaskSubmitted", "TaskSucceeded", "TaskFailed"):
            marks[state].setdefault(kind, at)
    if "entered" not in marks.get(STEPS[0][0], {}):
        return None
    ms = 1000.0
    steps: dict[str, dict[str, float]] = {}
    previous_done: float | None = None
    for step, status in STEPS:
        m = marks.get(step, {})
        if "TaskFailed" in m or "entered" not in m:
            break  # a failed attempt (retried or compensated): not the plain path
        segments: dict[str, float] = {}
        if previous_done is not None:
            segments["transition"] = (m["entered"] - previous_done) * ms
        if "TaskSubmitted" in m:
            segments["dispatch"] = (m["TaskSubmitted"] - m["entered"]) * ms
            at = history.get(status) if status else None
            if at is not None:
                segments["queue"] = (at - m["TaskSubmitted"]) * ms
            if "TaskSucceeded" in m:
                segments["task"] = (m["TaskSucceeded"] - m["TaskSubmitted"]) * ms
                if at is not None:
                    segments["step"] = (m["TaskSucceeded"] - at) * ms
        steps[step] = segments
        if "TaskSucceeded" not in m:
            break
        previous_done = m["TaskSucceeded"]
    line = Timeline(order_id, (marks[STEPS[0][0]]["entered"] - watched.answered) * ms, steps)
    last, _ = STEPS[-1]
    if (
        watched.status == "CONFIRMED"
        and watched.seen is not None
        and "queue" in steps.get(last, {})
    ):
        # entered -> submitted -> succeeded -> (transition) entered ... -> ConfirmOrder's txn
        line.sfn = sum(s.get("dispatch", 0.0) + s.get("transition", 0.0) for s in steps.values())
        line.worker = sum(s["task"] for n, s in steps.items() if n != last) + steps[last]["queue"]
        line.projection = (watched.seen - history["CONFIRMED"]) * ms
        line.total = (watched.seen - watched.answered) * ms
    return line


def read_histories(stack: Stack, load: Load, limit: int) -> dict[str, list[dict[str, Any]]]:
    """moto's execution history of up to `limit` sampled orders (read after the window)."""
    sfn = stack.aws_client("stepfunctions")
    machines = sfn.list_state_machines()["stateMachines"]
    table = stack.aws.get("HEMISPHERE_TABLE", "hemisphere")
    arns = [str(m["stateMachineArn"]) for m in machines if m["name"] == f"{table}-checkout"]
    if not arns:
        raise BenchError(f"no state machine {table}-checkout at the local AWS endpoint")
    sampled = list(load.watched)
    random.Random(0).shuffle(sampled)
    return {o: execution_history(sfn, arns[0], o) for o in sampled[:limit]}


def timelines(
    load: Load,
    final: Mapping[str, dict[str, Any] | None],
    histories: Mapping[str, list[dict[str, Any]]],
) -> list[Timeline]:
    found: list[Timeline] = []
    for order_id, events in histories.items():
        order = final.get(order_id)
        history = status_times(order) if order else {}
        line = timeline(order_id, load.watched[order_id], history, events)
        if line is not None:
            found.append(line)
    return found


# --- figures -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100.0 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def dist(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
    }


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


SEGMENTS = {
    "transition": "moto: previous SendTaskSuccess -> this Task state entered",
    "dispatch": "moto: Task state entered -> its message sent to SQS (TaskSubmitted)",
    "queue": "in SQS until the worker's step wrote its status (payment steps: after the "
    "provider's answer)",
    "step": "that transaction -> moto got SendTaskSuccess",
    "task": "TaskSubmitted -> TaskSucceeded: SQS + worker, all of it",
}


def cell(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{percentile(values, 50):.0f} / {percentile(values, 99):.0f}"


def print_split(lines: list[Timeline], split: dict[str, Any]) -> None:
    """Per step, then per confirmed order: where the time between answer and CONFIRMED went."""
    print(
        f"\n## Where a saga's time goes: {len(lines)} sampled orders, moto's execution history "
        "and the orders' status timestamps (ms, p50 / p99 over the orders that went through "
        "the step)"
    )
    keys = list(SEGMENTS)
    print(f"  {'step':<17} {'n':>4} " + " ".join(f"{k:>13}" for k in keys))
    split["lead"] = dist([x.lead for x in lines])
    print(f"  {'answer -> CreateOrder entered':<36} {cell([x.lead for x in lines]):>13}")
    for step, _ in STEPS:
        went = [x.steps[step] for x in lines if step in x.steps]
        segs = {k: [s[k] for s in went if k in s] for k in keys}
        split[step] = {k: dist(v) for k, v in segs.items() if v}
        print(f"  {step:<17} {len(went):>4} " + " ".join(f"{cell(segs[k]):>13}" for k in keys))
    for key, meaning in SEGMENTS.items():
        print(f"    {key:<10} {meaning}")
    confirmed = [x for x in lines if x.total is not None]
    if not confirmed:
        print("  (no sampled order confirmed in time: no per-order split)")
        return
    parts: dict[str, list[float]] = {
        "Step Functions in moto (transitions + dispatch)": [x.sfn or 0.0 for x in confirmed],
        "SQS + worker (every task; ConfirmOrder to its txn)": [x.worker or 0.0 for x in confirmed],
        "ConfirmOrder's txn -> CONFIRMED seen in order(id)": [
            x.projection or 0.0 for x in confirmed
        ],
        "answer -> CreateOrder entered": [x.lead for x in confirmed],
        "total: answer -> CONFIRMED seen": [x.total or 0.0 for x in confirmed],
    }
    total_mean = mean(parts["total: answer -> CONFIRMED seen"])
    print(f"  per confirmed order ({len(confirmed)}): {'p50':>16} {'mean':>7} {'of the mean':>12}")
    for label, values in parts.items():
        print(
            f"    {label:<52} {percentile(values, 50):7.0f} {mean(values):7.0f} "
            f"{100 * mean(values) / total_mean:11.0f}%"
        )
    split["per_order"] = {k: dist(v) | {"mean": mean(v)} for k, v in parts.items()}


def report(
    load: Load,
    final: Mapping[str, dict[str, Any] | None],
    lines: list[Timeline],
    price: PollPrice | None,
    args: argparse.Namespace,
) -> dict[str, Any]:
    assert load.cpu is not None
    start, end = load.window
    seconds = end - start
    placed = load.in_window()
    accepted_rps = len(placed) / seconds
    mutation_ms = [(p.answered - p.sent) * 1000.0 for p in placed]
    confirmed_in_window = failed_in_window = steps_in_window = 0
    states: dict[str, int] = {}
    for order in final.values():
        status = order["status"] if order else "not projected"
        states[status] = states.get(status, 0) + 1
        if order:
            history = status_times(order)
            confirmed_in_window += start <= history.get("CONFIRMED", -1.0) < end
            failed_in_window += start <= history.get("FAILED", -1.0) < end
            steps_in_window += sum(1 for at in history.values() if start <= at < end)
    confirmed_rps = confirmed_in_window / seconds

    def counts(found: Mapping[str, int]) -> str:
        order = [*ORDER_STATUSES, "not created yet", "not projected"]
        return ", ".join(f"{k} {found[k]}" for k in sorted(found, key=order.index))

    print(f"\n## Throughput: {args.concurrency} clients, window {seconds:.1f} s")
    print(
        f"  checkouts accepted  {accepted_rps:7.1f} /s  ({len(placed)} answered in the window; "
        f"{load.errors} errors in the whole run"
        + (f"; first: {load.first_error[:160]}" if load.errors else "")
        + ")"
    )
    throttled = sum(1 for at in load.throttled if start <= at < end)
    print(
        f"  checkouts throttled {throttled / seconds:7.1f} /s  ({throttled} ThrottlingException "
        "answers in the window, each client waiting the retryAfterSeconds hint before retrying)"
    )
    m = dist(mutation_ms)
    print(
        f"    checkout mutation p50 {m['p50']:.1f} ms, p99 {m['p99']:.1f} ms, max {m['max']:.1f} ms"
    )
    print(
        f"  orders CONFIRMED    {confirmed_rps:7.1f} /s  ({confirmed_in_window} whose ConfirmOrder "
        f"ran in the window, by their status history; FAILED in the window: {failed_in_window})"
    )
    print(
        f"  saga steps run        {steps_in_window / seconds:5.1f} /s  (status changes in the "
        f"window: 5 per checkout, so {steps_in_window / 5 / seconds:.1f} checkouts' worth of "
        "work per second)"
    )
    print(f"  sampled orders at the window's end, in PostgreSQL: {counts(load.sampled_at_end)}")
    print(f"  every order of the run when the report was made: {counts(states)}")
    queue = load.queue_samples
    if queue:
        print(
            f"  task queue (SQS, every {QUEUE_SAMPLE_SECONDS:g} s): waiting "
            + " ".join(str(q[0]) for q in queue)
            + "; received by the worker, not deleted yet "
            + " ".join(str(q[1]) for q in queue)
            + " (it handles 8 at a time)"
        )

    watched = list(load.watched.values())
    latencies = [
        (w.seen - w.answered) * 1000.0 for w in watched if w.seen and w.status == "CONFIRMED"
    ]
    not_final = sum(1 for w in watched if w.status is None)
    failed = sum(1 for w in watched if w.status not in (None, "CONFIRMED"))
    lat = dist(latencies)
    period = mean(load.poll_periods) * 1000.0
    keys = load.poll_keys / load.polls if load.polls else 0.0
    requests = load.poll_requests / load.polls if load.polls else 0.0
    print(
        f"\n## Checkout answered -> CONFIRMED seen in order(id): every {args.sample_every}. "
        f"order answered in the window ({len(watched)} orders)"
    )
    print(
        f"  p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms, max {lat['max']:.0f} ms over "
        f"{lat['n']} confirmed; not final {args.confirm_timeout:g} s after the answer: "
        f"{not_final}; FAILED or CANCELLED: {failed}"
    )
    print(
        f"  watcher: PostgreSQL every {1000 * args.poll_interval:g} ms, then order(id) for the "
        f"orders final there: {load.polls / seconds:.1f} polls/s in the window, {keys:.1f} "
        f"orders per poll in {requests:.1f} requests (one per customer, with its token)"
        + (f", mean period {period:.0f} ms (the resolution)" if load.poll_periods else "")
    )

    cpu = load.cpu
    names = ["moto", "serve", "postgres", "payments", "bench", "watcher backend"]
    ours = sum(cpu.processes.get(n, 0.0) for n in names)
    stack_cpu = sum(cpu.processes.get(n, 0.0) for n in STACK)
    irq = cpu.processes.get(IRQ, 0.0)
    busy = sum(cpu.cores_busy.values()) * seconds
    per_checkout = len(placed) or 1
    labels = {
        "moto": "moto (local AWS endpoint)",
        "serve": "hemisphere serve",
        "postgres": "PostgreSQL (all processes)",
        "payments": "card provider simulator",
        "bench": "this script (load, watcher)",
        "watcher backend": "its PostgreSQL backend",
    }
    print(f"\n## CPU over the window ({seconds:.1f} s, {os.cpu_count()} cores)")
    print(f"  {'':<30} {'CPU s':>7} {'% core':>7} {'% stack':>8} {'ms/checkout':>12}")
    for name in names:
        if name not in cpu.processes:
            print(f"  {labels[name]:<30} {'-':>7}   (DATABASE_URL is set: not measured)")
            continue
        used = cpu.processes[name]
        share = f"{100 * used / stack_cpu:7.0f}%" if name in STACK and stack_cpu else f"{'':8}"
        print(
            f"  {labels[name]:<30} {used:7.2f} {cpu.percent(name):6.0f}% {share} "
            f"{1000 * used / per_checkout:12.1f}"
        )
    other = max(0.0, busy - ours - irq)
    print(f"  {'kernel irq + softirq':<30} {irq:7.2f} {100 * irq / seconds:6.0f}%")
    print(
        f"  {'other work on the machine':<30} {other:7.2f} {100 * other / seconds:6.0f}%"
        "   (the cores' busy time that none of the above accounts for)"
    )
    print(
        "  cores busy: "
        + ", ".join(f"cpu{c} {100 * b:.0f}%" for c, b in sorted(cpu.cores_busy.items()))
        + f"; loadavg at the window's end {' '.join(f'{x:.2f}' for x in load.loadavg)}"
    )
    if load.others:
        print(
            "  busiest other processes: "
            + ", ".join(f"{n} {100 * s / seconds:.0f}%" for n, s in load.others)
        )
    moto = cpu.processes.get("moto", 0.0)
    moto_ms = 1000 * moto / per_checkout
    print(
        f"  moto: {moto_ms:.1f} ms CPU per accepted checkout, "
        f"{5000 * moto / max(1, steps_in_window):.1f} per 5 saga steps run (one checkout's "
        "worth)"
        + (
            f", {1000 * moto / confirmed_in_window:.1f} per confirmed order"
            if confirmed_in_window
            else ""
        )
        + f"; {100 * moto / stack_cpu if stack_cpu else 0:.0f}% of the stack's CPU"
    )
    watcher_json: dict[str, Any] | None = None
    if price is not None and load.polls:
        per_poll = price.at(keys)
        spent = {n: per_poll.get(n, 0.0) * load.polls for n in ("moto", "serve")}
        print(
            f"  of which the watcher's {load.polls} polls of {keys:.0f} orders (priced on the "
            f"idle stack at {price.keys[0]} and {price.keys[1]} orders): moto "
            f"{spent['moto']:.2f} s ({1000 * per_poll.get('moto', 0.0):.1f} ms/poll), serve "
            f"{spent['serve']:.2f} s ({1000 * per_poll.get('serve', 0.0):.1f} ms/poll); moto "
            f"without them {1000 * (moto - spent['moto']) / per_checkout:.1f} ms per checkout"
        )
        watcher_json = {"per_poll_cpu_s": per_poll, "price": asdict(price)}

    parts: dict[str, float] = {}
    if load.serve_stacks is not None:
        parts = serve_parts.split(load.serve_stacks.read_text().splitlines())
        serve_ms = 1000 * cpu.processes.get("serve", 0.0) / per_checkout
        print(
            f"\n  serve's {serve_ms:.1f} ms CPU per accepted checkout, by part (py-spy, "
            "outermost frame; bench/serve_parts.py):"
        )
        for part, share in parts.items():
            print(f"    {part:<42} {share * serve_ms:6.1f} ms  {100 * share:4.0f}%")

    split: dict[str, Any] = {}
    if lines:
        print_split(lines, split)

    return {
        "window_s": seconds,
        "accepted_per_s": accepted_rps,
        "confirmed_per_s": confirmed_rps,
        "accepted_in_window": len(placed),
        "confirmed_in_window": confirmed_in_window,
        "status_changes_in_window": steps_in_window,
        "failed_in_window": failed_in_window,
        "errors": load.errors,
        "first_error": load.first_error,
        "throttled_in_window": throttled,
        "final_states": states,
        "sampled_at_window_end": load.sampled_at_end,
        "mutation_ms": m,
        "confirm_latency_ms": lat | {"not_final": not_final, "failed": failed},
        "watcher": {
            "sampled": len(watched),
            "polls": load.polls,
            "mean_period_ms": period,
            "orders_per_poll": keys,
            "requests_per_poll": requests,
            "calibration": watcher_json,
        },
        "cpu": asdict(cpu),
        "moto_cpu_ms_per_checkout": moto_ms,
        "busiest_other_processes": load.others,
        "loadavg_window_end": load.loadavg,
        "queue_samples": queue,
        "latency_split_ms": split,
        "serve_cpu_parts": parts,
        "timelines": [asdict(x) for x in lines],
    }


# --- main ----------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "-"

    return {
        "python": sys.version.split()[0],
        "packages": {d: version(d) for d in ("moto", "strawberry-graphql", "httpx", "asyncpg")},
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Checkout sagas per second on `hemisphere serve`'s local stack, the time "
        "to CONFIRMED, and the share of the local AWS endpoint (moto)."
    )
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds (30)")
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop clients (16)")
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="seconds of load before the window (5)"
    )
    parser.add_argument(
        "--sample-every",
        type=int,
        default=2,
        help="watch every N-th order answered in the window until it is final (2)",
    )
    parser.add_argument(
        "--poll-interval", type=float, default=0.01, help="the watcher's period (0.01 s)"
    )
    parser.add_argument(
        "--pace",
        choices=["answered", "final"],
        default="answered",
        help="a client's next checkout goes when the last was answered (the default: "
        "throughput), or when its order is final in order(id) (one order at a time per "
        "client: every order is watched, whatever --sample-every says)",
    )
    parser.add_argument(
        "--confirm-timeout",
        type=float,
        default=30.0,
        help="a watched order not final this long after its answer did not confirm in time (30)",
    )
    parser.add_argument(
        "--timelines",
        type=int,
        default=300,
        help="confirmed orders whose execution history is read from moto for the split (300)",
    )
    parser.add_argument(
        "--calibrate",
        type=float,
        default=2.0,
        help="before the load: seconds idle, then of polls of 4 and of 14 seeded orders, to price "
        "the watcher's polls (2; 0: skip)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the clients (1)")
    parser.add_argument(
        "--json", type=Path, default=None, metavar="OUT", help="also write every figure here"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample serve with py-spy over the window and split its CPU per checkout into "
        "the API, the saga steps, the relay and projector, the publisher",
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.concurrency < 1 or args.sample_every < 1 or args.warmup < 0:
        parser.error("--duration, --concurrency and --sample-every must be positive")
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    started = time.monotonic()
    with Processes() as procs:
        stack = start_stack(procs, workdir)
        print(
            f"# stack up in {time.monotonic() - started:.0f} s: serve {stack.pids['serve']}, "
            f"moto {stack.pids['moto']}, payments {stack.pids['payments']}, postgres "
            f"{stack.postmaster or 'external'}; nothing pinned. Load generator and watcher: "
            f"httpx.AsyncClient in this process ({os.getpid()}), unpinned.",
            flush=True,
        )
        price = None
        if args.calibrate > 0:
            print(f"# pricing the watcher's polls on the idle stack ({3 * args.calibrate:g} s) ...")
            price = asyncio.run(price_polls(stack, args.poll_interval, args.calibrate))
        load = asyncio.run(run_load(stack, args))
        print(f"# reading {min(args.timelines, len(load.watched))} execution histories ...")
        # Before the statuses: a status written after its moto event is then never missing.
        histories = read_histories(stack, load, args.timelines)
        final = asyncio.run(final_statuses(stack, load))
        lines = timelines(load, final, histories)
        results = report(load, final, lines, price, args)
        loadavg_end = os.getloadavg()
        print(
            f"\n# loadavg at start {' '.join(f'{x:.2f}' for x in args.loadavg_start)}, at end "
            f"{' '.join(f'{x:.2f}' for x in loadavg_end)}; total {time.monotonic() - started:.0f} s"
        )
        return {**results, "loadavg_end": loadavg_end, "pids": stack.pids}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = environment()
    args.loadavg_start = env["loadavg_start"]
    print(
        f"# write_path: {args.concurrency} clients, warm-up {args.warmup:g} s, window "
        f"{args.duration:g} s, watching every {args.sample_every}. order, next checkout when "
        f"the last is {args.pace}; python {env['python']}, "
        + ", ".join(f"{k} {v}" for k, v in env["packages"].items())
        + f"; {env['cpus']} cores, loadavg {' '.join(f'{x:.2f}' for x in env['loadavg_start'])}"
    )
    workdir = Path(tempfile.mkdtemp(prefix="hemisphere-write-path-"))
    ok = False
    try:
        with unwind_on_signals():
            results = run(args, workdir)
        ok = True
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"write_path: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("write_path: interrupted; every process is stopped", file=sys.stderr)
        return 130
    finally:
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"# logs kept in {workdir}", file=sys.stderr)
    if args.json is not None:
        config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        args.json.write_text(
            json.dumps({"config": config, "environment": env, **results}, indent=2, default=str)
        )
        print(f"# figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
