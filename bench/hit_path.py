"""The cost of one `product(id)` answer inside the ASGI app, with and without the read cache,
in one run: no server, no socket, no other process; what the app itself spends.

    .venv/bin/python bench/hit_path.py [--requests 20000] [--profile]

The app is `create_app` with an in-memory store (tests/support/fakes) behind the cached
reader, its change feed taken as listening; each request is one ASGI call with an API key.
"cache off" is the same app whose cache never listens: every request executes the query and
reads the store (in memory here, so the figure is the app's own work, not DynamoDB's).
`--profile` prints cProfile's top entries of the cached path.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from asgi_post import graphql_post_scope, post  # noqa: E402

from hemisphere.app import create_app  # noqa: E402
from projections.cached_reader import CachedProjectionReader  # noqa: E402
from projections.read_cache import ReadCache  # noqa: E402
from tests.support.app import API_KEY, SETTINGS, fake_runtime, runtime_factory  # noqa: E402
from tests.support.fakes import InMemoryReader, make_products  # noqa: E402

QUERY = '{ product(id: "p-0001") { id name price { amount currency } } }'


def build(listening: bool) -> Any:
    store = InMemoryReader(products=make_products(10))
    cache = ReadCache(lambda: 1 if listening else None)
    runtime = fake_runtime(store)
    runtime = replace(
        runtime,
        ports=replace(runtime.ports, reader=CachedProjectionReader(store, cache)),
        read_cache=cache,
    )
    return create_app(SETTINGS, runtime_factory=runtime_factory(runtime))


async def measure(app: Any, requests: int, profile: bool) -> float:
    body = json.dumps({"query": QUERY}).encode()
    scope = graphql_post_scope(body, (b"x-api-key", API_KEY.encode()))

    async def one() -> None:
        answer = await post(app, scope, body)
        if b'"p-0001"' not in answer:
            raise RuntimeError(f"unexpected answer: {answer!r}")

    async with app.router.lifespan_context(app):
        for _ in range(2000):
            await one()
        started = time.perf_counter()
        for _ in range(requests):
            await one()
        elapsed = time.perf_counter() - started
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(requests):
                await one()
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    return elapsed / requests * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    cached = asyncio.run(measure(build(True), args.requests, args.profile))
    uncached = asyncio.run(measure(build(False), args.requests // 4, False))
    print(f"product(id) in the ASGI app: cached {cached:.1f} us, cache off {uncached:.1f} us")
    print(f"ratio: the cached answer costs {cached / uncached:.3f}x the executed one")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
