"""The API's own CPU per checkout: the mutation as a deployed API instance serves it, apart
from the saga steps, the relay and the stream publisher that `hemisphere serve` also runs.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/checkout_cpu.py [--checkouts 300] [--profile]

The app (`create_app` with the real runtime: PostgreSQL, a moto server, no workers, no stream
publisher: `hemisphere api` with HEMISPHERE_RUN_WORKERS=false) runs in this process and is
called through ASGI directly, without a server or an HTTP client, so this process's CPU is
the app's: authentication of the customer's token, GraphQL, the admission check, the
checkout intent's INSERT, StartExecution (signed, sent, parsed). The sagas run in a
`hemisphere worker` process beside it, as deployed, so that they go on and admission never
throttles. One checkout at a time, each answered before the next; the CPU of the idle app
(its timers and polls) over the same time is subtracted. Prints the app's CPU per checkout,
the local endpoint's (moto's process) and the worker's, and with --profile cProfile's top
entries of the measured checkouts.

Before measuring, the shop is browsed: every product and customer the checkouts name is read
once (`product(id)`, `customer(id)`), as a customer reads a product before buying it, so the
resolver's validating reads meet the region's read cache as they would in a shop. `--cold`
skips that: each checkout then reads a product nobody read before. The read cache's hits and
misses over the measured checkouts are printed either way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import psutil
import uvloop

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from asgi_post import graphql_post_scope, post  # noqa: E402

from hemisphere.app import create_app  # noqa: E402
from hemisphere.bootstrap import start_runtime  # noqa: E402
from hemisphere.localstack import MotoServer, spawn, stop_process  # noqa: E402
from hemisphere.payments_sim import PaymentsSimulator  # noqa: E402
from hemisphere.runtime import Runtime, StartupOptions  # noqa: E402
from tests.support.app import SETTINGS, token_headers  # noqa: E402
from tests.support.stack import database_from_template  # noqa: E402

CHECKOUT = "mutation($input: CheckoutInput!) { checkout(input: $input) { id status } }"
BROWSE_PRODUCT = "query($id: ID!) { product(id: $id) { id name price { amount currency } } }"
BROWSE_CUSTOMER = "query($id: ID!) { customer(id: $id) { id name } }"
CUSTOMERS = [f"c-{n:04d}" for n in range(1, 51)]
PRODUCTS = [f"p-{n:04d}" for n in range(1, 241)]
LOCAL_KEY = "hemisphere-local"


@contextlib.contextmanager
def worker(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = spawn(
            [sys.executable, "-m", "hemisphere.cli", "worker"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        stop_process(process, 20.0)


class Checkouts:
    """Checkouts sent to the ASGI app one at a time, as raw ASGI calls."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self.sent = 0
        self.throttled = 0
        # The token of each customer, made once (a client keeps its token).
        self.headers = {c: token_headers(c)["authorization"].encode() for c in CUSTOMERS}

    async def one(self) -> None:
        n = self.sent
        customer = CUSTOMERS[n % len(CUSTOMERS)]
        body = orjson.dumps(
            {
                "query": CHECKOUT,
                "variables": {
                    "input": {
                        "customerId": customer,
                        "lines": [{"productId": PRODUCTS[n % len(PRODUCTS)], "quantity": 1}],
                        "paymentToken": "tok_visa",
                        "idempotencyKey": uuid.uuid4().hex,
                    }
                },
            }
        )
        scope = graphql_post_scope(body, (b"authorization", self.headers[customer]))
        document = orjson.loads(await post(self._app, scope, body))
        if document.get("errors"):
            if document["errors"][0].get("errorType") == "ThrottlingException":
                self.throttled += 1
                await asyncio.sleep(0.5)
                return
            raise RuntimeError(f"checkout failed: {document['errors'][0]}")
        self.sent += 1


async def browse(app: Any, headers: dict[str, bytes]) -> None:
    """Read every product and customer once, as the shop's visitors do before they buy."""
    for n, product in enumerate(PRODUCTS):
        customer = CUSTOMERS[n % len(CUSTOMERS)]
        for query, item in ((BROWSE_PRODUCT, product), (BROWSE_CUSTOMER, customer)):
            body = orjson.dumps({"query": query, "variables": {"id": item}})
            scope = graphql_post_scope(body, (b"authorization", headers[customer]))
            document = orjson.loads(await post(app, scope, body))
            if document.get("errors"):
                raise RuntimeError(f"browsing failed: {document['errors'][0]}")


def cpu_of(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def measure(args: argparse.Namespace, database_url: str, aws: str, payments: str) -> int:
    table = f"bench-checkout-{uuid.uuid4().hex[:8]}"
    settings = replace(
        SETTINGS,
        database_url=database_url,
        aws_endpoint_url=aws,
        aws_access_key_id=LOCAL_KEY,
        aws_secret_access_key=LOCAL_KEY,
        table_name=table,
        payments_url=payments,
        run_workers=False,
        publish_url=None,
        # The region's broker, as deployed: the read cache listens there, and the worker's
        # projector announces its writes there.
        redis_url=os.environ.get("REDIS_URL") or None,
    )
    started: list[Runtime] = []

    @contextlib.asynccontextmanager
    async def runtime_factory(s: Any) -> AsyncIterator[Runtime]:
        options = StartupOptions(seed_demo_data=True, rebuild_projections=True)
        async with start_runtime(s, options) as runtime:
            started.append(runtime)  # its read cache's figures are printed
            yield runtime

    app = create_app(settings, runtime_factory=runtime_factory)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "AWS_ENDPOINT_URL": aws,
        "AWS_ACCESS_KEY_ID": LOCAL_KEY,
        "AWS_SECRET_ACCESS_KEY": LOCAL_KEY,
        "HEMISPHERE_TABLE": table,
        "HEMISPHERE_PAYMENTS_URL": payments,
        "HEMISPHERE_REGION": settings.region,
        "HEMISPHERE_PRIMARY_REGION": settings.primary_region,
    }
    checkouts = Checkouts(app)
    async with app.router.lifespan_context(app):
        with worker(env, Path(args.log)) as process:
            print(f"# app started; {args.warmup} warm-up checkouts ...", flush=True)
            while checkouts.sent < args.warmup:
                await checkouts.one()
            if not args.cold:
                await browse(app, checkouts.headers)
            idle_cpu, idle_wall = time.process_time(), time.monotonic()
            await asyncio.sleep(args.idle)
            idle_rate = (time.process_time() - idle_cpu) / (time.monotonic() - idle_wall)
            moto_before, worker_before = cpu_of(args.moto_pid), cpu_of(process.pid)
            cache = started[0].read_cache
            cache_before = cache.stats() if cache is not None else None
            profiler = cProfile.Profile() if args.profile else None
            done, throttled = checkouts.sent, checkouts.throttled
            cpu, wall, split = time.process_time(), time.monotonic(), os.times()
            if profiler is not None:
                profiler.enable()
            while checkouts.sent - done < args.checkouts:
                await checkouts.one()
            if profiler is not None:
                profiler.disable()
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            ended = os.times()
            kernel = ended.system - split.system
            moto = cpu_of(args.moto_pid) - moto_before
            work = cpu_of(process.pid) - worker_before
            n = checkouts.sent - done
            cache_after = cache.stats() if cache is not None else None
    app_ms = (cpu - idle_rate * wall) / n * 1000
    idle_ms = idle_rate * wall / n * 1000
    refused = checkouts.throttled - throttled
    print(f"# {n} checkouts in {wall:.1f} s ({n / wall:.1f}/s), {refused} throttled")
    print(
        f"app CPU per checkout: {app_ms:.2f} ms "
        f"(the idle app's {idle_rate * 100:.1f} % of a core subtracted: {idle_ms:.2f} ms)"
    )
    # Over loopback, a send does the receiving side's TCP work too, in the sender's system
    # time: the kernel's share is where the local endpoint's closeness shows in the app's CPU.
    print(
        f"  of which in the kernel (system time, idle not subtracted): {kernel / n * 1000:.2f} ms"
    )
    print(f"local AWS endpoint (moto) CPU per checkout: {moto / n * 1000:.1f} ms (sagas included)")
    print(f"worker CPU per checkout: {work / n * 1000:.1f} ms (six saga steps, relay, projector)")
    if cache_before is not None and cache_after is not None:
        hits = cache_after.hits - cache_before.hits
        misses = cache_after.misses - cache_before.misses
        browsed = "cold: nothing browsed" if args.cold else "after browsing"
        print(f"read cache over the checkouts ({browsed}): {hits} hits, {misses} misses")
    else:
        print("read cache: off (no change feed)")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
    return 0


async def run(args: argparse.Namespace) -> int:
    admin_url = os.environ.get("DATABASE_URL")
    if not admin_url:
        raise SystemExit("DATABASE_URL must name a PostgreSQL server (a database is made on it)")
    with MotoServer() as moto, PaymentsSimulator() as payments:
        assert moto.pid is not None
        args.moto_pid = moto.pid
        # An empty database of our own on that server, dropped at the end.
        async with database_from_template(admin_url, "template0") as database_url:
            return await measure(args, database_url, moto.url, payments.url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkouts", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--idle", type=float, default=3.0, help="seconds of idle app measured")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--cold", action="store_true", help="do not browse the shop before measuring"
    )
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="cumulative", choices=["cumulative", "tottime"])
    parser.add_argument("--log", default="/tmp/hemisphere-bench-checkout-worker.log")
    # The loop a deployed API runs: uvicorn picks uvloop (uvicorn[standard]) when it is there.
    return uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
