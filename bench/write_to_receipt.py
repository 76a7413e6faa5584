"""Write → receipt in the region where the write happens: a mutation's change reaching a
subscriber, with the projector's announcement (the default) and through the stream alone
(HEMISPHERE_ANNOUNCE_WRITES=false), in one run.

    .venv/bin/python bench/write_to_receipt.py [--changes 60] [--json OUT]

For each mode, one `hemisphere serve` on a temporary data dir (as read_path.py starts it,
unpinned). One AppSync real-time client (gql's AppSyncWebsocketsTransport, API key)
subscribes to `onProductChanged(id: "p-0001")`; then, one at a time, a SigV4-signed
`upsertProduct` renames p-0001. Measured per change: the mutation's answer (client side) and
the time from sending the mutation to the subscriber's receipt of that change. The path:
PostgreSQL (product + outbox, one transaction) → NOTIFY → the outbox relay → DynamoDB PutItem
→ [announced: the region's broker at once | stream: the publisher's next poll → publishProduct]
→ the subscriber's WebSocket. Both modes share the machine, so read the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from procs import Processes, unwind_on_signals

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

from gql import Client  # noqa: E402
from gql.graphql_request import GraphQLRequest  # noqa: E402
from gql.transport.appsync_auth import AppSyncApiKeyAuthentication  # noqa: E402
from gql.transport.appsync_websockets import AppSyncWebsocketsTransport  # noqa: E402
from write_path import percentile, start_stack  # noqa: E402

SUBSCRIPTION = 'subscription { onProductChanged(id: "p-0001") { id name version } }'
UPSERT = """mutation($name: String!) { upsertProduct(input: {id: "p-0001", sku: "SKU-0001",
  name: $name, category: "books", price: {amount: 1299, currency: "EUR"}, available: 50})
  { id version } }"""


@dataclass
class Result:
    mode: str
    answers_ms: list[float]
    receipts_ms: list[float]
    missed: int


def start_serve(procs: Processes, workdir: Path, announce: bool) -> tuple[str, str, str, str]:
    """serve as write_path.py starts it; (host, API key, IAM key id, IAM secret)."""
    announced = "true" if announce else "false"
    print(f"# HEMISPHERE_ANNOUNCE_WRITES={announced}", flush=True)
    stack = start_stack(procs, workdir, HEMISPHERE_ANNOUNCE_WRITES=announced)
    akid, secret = (stack.data_dir / "iam-credentials").read_text().strip().split(":", 1)
    host = stack.url.removeprefix("http://").removesuffix("/graphql")
    return host, stack.api_key, akid, secret


async def measure(mode: str, host: str, api_key: str, akid: str, secret: str, n: int) -> Result:
    arrivals: dict[str, float] = {}
    arrived = asyncio.Event()
    subscribed = asyncio.Event()

    async def subscriber() -> None:
        auth = AppSyncApiKeyAuthentication(host=host, api_key=api_key)
        transport = AppSyncWebsocketsTransport(
            url=f"ws://{host}/graphql/realtime", auth=auth, connect_timeout=30
        )
        async with Client(transport=transport, fetch_schema_from_transport=False) as session:
            subscribed.set()
            async for result in session.subscribe(GraphQLRequest(SUBSCRIPTION)):
                arrivals.setdefault(result["onProductChanged"]["name"], time.perf_counter())
                arrived.set()

    task = asyncio.create_task(subscriber())
    await asyncio.wait_for(subscribed.wait(), 60)
    await asyncio.sleep(1.0)  # the start_ack has gone out; the broker listens
    url = f"http://{host}/graphql"
    answers: list[float] = []
    receipts: list[float] = []
    missed = 0
    async with httpx.AsyncClient(timeout=30) as client:
        for i in range(n + 3):  # the first three warm the path up
            name = f"Receipt {mode} {i} {time.time_ns()}"
            body = json.dumps({"query": UPSERT, "variables": {"name": name}}).encode()
            request = AWSRequest(
                method="POST", url=url, data=body, headers={"content-type": "application/json"}
            )
            SigV4Auth(Credentials(akid, secret), "appsync", "us-east-1").add_auth(request)
            sent = time.perf_counter()
            response = await client.post(url, content=body, headers=dict(request.headers))
            answered = time.perf_counter()
            payload: dict[str, Any] = response.json()
            if payload.get("errors"):
                raise RuntimeError(f"upsertProduct failed: {payload['errors']}")
            deadline = sent + 10
            while name not in arrivals and time.perf_counter() < deadline:
                arrived.clear()
                try:
                    await asyncio.wait_for(arrived.wait(), deadline - time.perf_counter())
                except TimeoutError:
                    break
            if i < 3:
                continue
            answers.append((answered - sent) * 1000)
            if name in arrivals:
                receipts.append((arrivals[name] - sent) * 1000)
            else:
                missed += 1
            await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return Result(mode, answers, receipts, missed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=60, help="measured changes per mode")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT")
    args = parser.parse_args(argv)
    results: list[Result] = []
    with unwind_on_signals(), tempfile.TemporaryDirectory(prefix="hemisphere-w2r-") as tmp:
        for mode, announce in (("announced", True), ("stream only", False)):
            workdir = Path(tmp) / mode.replace(" ", "-")
            workdir.mkdir()
            with Processes() as procs:
                host, key, akid, secret = start_serve(procs, workdir, announce)
                results.append(asyncio.run(measure(mode, host, key, akid, secret, args.changes)))
    print(f"\n== write -> receipt, one subscriber, {args.changes} changes per mode (ms)")
    print(
        f"{'mode':<12} {'answer p50':>11} {'receipt p50':>12} {'p90':>8} {'p99':>8} {'missed':>7}"
    )
    for r in results:
        print(
            f"{r.mode:<12} {percentile(r.answers_ms, 50):>11.1f} "
            f"{percentile(r.receipts_ms, 50):>12.1f} {percentile(r.receipts_ms, 90):>8.1f} "
            f"{percentile(r.receipts_ms, 99):>8.1f} {r.missed:>7}"
        )
    announced, stream = results
    if announced.receipts_ms and stream.receipts_ms:
        ratio = statistics.median(stream.receipts_ms) / statistics.median(announced.receipts_ms)
        print(f"receipt p50: the stream alone is {ratio:.1f}x the announced path (same run)")
    if args.json is not None:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
