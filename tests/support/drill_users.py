"""A drill user's Target in front of a GraphQL handler of the test's own (an aiohttp server on
a free port), for the functional tests of hemisphere/drill/users.py."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from hemisphere.drill.records import Acknowledged, Request
from hemisphere.drill.users import Target
from hemisphere.local_issuer import CustomerTokens

Handler = Callable[[web.Request], Awaitable[web.Response]]


@contextlib.asynccontextmanager
async def target_of(
    graphql: Handler,
    tokens: CustomerTokens,
    requests: list[Request],
    acknowledged: list[Acknowledged],
    location: str = "eu-west-1",
) -> AsyncIterator[Target]:
    """A Target whose POST /graphql `graphql` answers; what it records goes to the lists."""
    app = web.Application()
    app.router.add_post("/graphql", graphql)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            yield Target(
                location,
                f"http://127.0.0.1:{port}/graphql",
                http,
                time.monotonic,
                requests,
                acknowledged,
                tokens,
            )
    finally:
        await runner.cleanup()
