"""What telemetry costs a GraphQL request: the same app (fake in-memory runtime, no network,
so the app's own CPU is all there is to measure) with /metrics off, with /metrics on (the
default), and with tracing on too (spans recorded by the SDK, exported nowhere), interleaved
rounds so that drift hits each alike.

    .venv/bin/python bench/telemetry_overhead.py [--requests 2000] [--rounds 5]

Prints the median time per request of each and its ratio to metrics off (the baseline of
this run). In-process requests are the worst case for a ratio: over a real socket the same
absolute cost is a smaller share.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hemisphere.app import create_app
from tests.support.app import API_KEY, SETTINGS, fake_runtime, runtime_factory
from tests.support.fakes import InMemoryReader, make_products

QUERY = {
    "query": "query One($id: ID!) { product(id: $id) { id name price { amount currency } } }",
    "variables": {"id": "p-0001"},
    "operationName": "One",
}


def app(metrics: bool) -> Starlette:
    reader = InMemoryReader(products=make_products(3))
    settings = replace(SETTINGS, metrics_enabled=metrics)
    return create_app(settings, runtime_factory=runtime_factory(fake_runtime(reader)))


async def per_request(target: Starlette, requests: int) -> float:
    """CPU seconds per request (client and app share the process: the client's share is
    the same in every variant), sequential. CPU time, not wall time: the machine is shared,
    and other processes' load must not read as ours."""
    async with (
        target.router.lifespan_context(target),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=target), base_url="http://bench"
        ) as client,
    ):
        headers = {"x-api-key": API_KEY}
        for _ in range(50):  # warm-up: parse and validation caches, first allocations
            answer = await client.post("/graphql", json=QUERY, headers=headers)
            assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
        started = time.process_time()
        for _ in range(requests):
            await client.post("/graphql", json=QUERY, headers=headers)
        return (time.process_time() - started) / requests


async def main(requests: int, rounds: int) -> None:
    timings: dict[str, list[float]] = {"metrics off": [], "metrics on": []}
    for _ in range(rounds):
        timings["metrics off"].append(await per_request(app(False), requests))
        timings["metrics on"].append(await per_request(app(True), requests))
    # Tracing stays on for the rest of the process once installed: measured last.
    provider = TracerProvider()
    # As in production: spans queued and exported by a background thread.
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
    trace.set_tracer_provider(provider)
    timings["metrics + tracing"] = [await per_request(app(True), requests) for _ in range(rounds)]

    baseline = statistics.median(timings["metrics off"])
    print(
        f"{requests} sequential POST /graphql per round, {rounds} rounds, median CPU per request:"
    )
    for name, values in timings.items():
        median = statistics.median(values)
        print(
            f"  {name:<18} {median * 1e6:8.1f} us   x{median / baseline:.3f}"
            f"   (+{(median - baseline) * 1e6:.1f} us)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds))
