"""The drill's browse before it measures (hemisphere.drill.users.browse_everything): every read
a reader can make, once, against a GraphQL server of our own, recorded apart from the run."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from hemisphere.drill.users import (
    CATEGORIES,
    CUSTOMERS,
    PRODUCTS,
    browse_everything,
    read_request,
)
from hemisphere.local_issuer import CustomerTokens, LocalIssuer
from tests.support.drill_users import target_of


async def test_every_read_is_made_once_and_kept_out_of_the_run(tmp_path: Path) -> None:
    seen: Counter[tuple[str, str, bool]] = Counter()

    async def graphql(request: web.Request) -> web.Response:
        body: dict[str, Any] = orjson.loads(await request.read())
        variables = body["variables"]
        item = str(variables.get("id") or variables.get("c"))
        seen[(body["query"], item, "authorization" in request.headers)] += 1
        return web.json_response({"data": {}})

    run_requests: list[Any] = []
    tokens = CustomerTokens(LocalIssuer(tmp_path, "http://127.0.0.1:1/issuer"))
    async with target_of(graphql, tokens, run_requests, []) as target:
        made = await browse_everything(target)
    assert len(made) == len(PRODUCTS) + len(CATEGORIES) + len(CUSTOMERS)
    assert all(request.ok for request in made) and run_requests == []
    assert set(seen.values()) == {1}  # each read once
    # Everything a reader reads was read: products and categories with the API key, each
    # customer with its own token.
    rng = random.Random(7)
    for _ in range(500):
        query, variables, customer = read_request(rng)
        item = str(variables.get("id") or variables.get("c"))
        assert (query, item, customer is not None) in seen
