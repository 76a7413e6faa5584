"""The API's limits on every endpoint: over HTTP, the AppSync real-time protocol and
graphql-transport-ws, a request over a limit is a cheap ValidationError that runs nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hemisphere.app import create_app
from hemisphere.http.realtime_options import RealtimeOptions
from subscriptions.inprocess import InProcessBroker
from tests.functional.test_realtime_appsync import (
    AsgiWebSocket,
    api_key_auth,
    appsync_query,
    connect,
)
from tests.support.app import (
    API_KEY,
    client_for,
    fake_runtime,
    runtime_factory,
    with_settings,
)
from tests.support.fakes import InMemoryReader, make_products

LIMITED = with_settings(
    query_depth_limit=3, resolver_count_limit=500, introspection=False, max_request_bytes=4096
)
DEEP = '{ ordersByCustomer(customerId: "c-1") { items { lines { unitPrice { amount } } } } }'
MANY = "{ " + " ".join(f"a{i}: products(limit: 100) {{ items {{ id }} }}" for i in range(10)) + " }"


class CountingReader(InMemoryReader):
    """Counts the reads a request makes: a refused request makes none."""

    reads = 0

    async def products_page(self, *args: Any, **kwargs: Any) -> Any:
        CountingReader.reads += 1
        return await super().products_page(*args, **kwargs)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    reader = CountingReader(products=make_products(5))
    app = create_app(LIMITED, runtime_factory=runtime_factory(fake_runtime(reader)))
    async with client_for(app) as c:
        yield c


async def post(client: httpx.AsyncClient, query: str) -> httpx.Response:
    return await client.post("/graphql", json={"query": query}, headers={"x-api-key": API_KEY})


@pytest.mark.parametrize(
    ("query", "words"),
    [
        (DEEP, "depth of 5, over this API's limit of 3"),
        (MANY, "resolvers"),
        ("{ __schema { queryType { name } } }", "introspection is not allowed"),
    ],
    ids=["depth", "resolvers", "introspection"],
)
async def test_over_a_limit_over_http(client: httpx.AsyncClient, query: str, words: str) -> None:
    before = CountingReader.reads
    response = await post(client, query)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["errorType"] == "ValidationError" and words in error["message"]
    assert CountingReader.reads == before  # nothing ran


async def test_within_the_limits_runs(client: httpx.AsyncClient) -> None:
    response = await post(client, "{ products(limit: 5) { items { id } } }")
    assert response.status_code == 200 and "errors" not in response.json()


async def test_the_request_size_limit_is_configurable(client: httpx.AsyncClient) -> None:
    big = json.dumps({"query": "{ region { region } }", "pad": "x" * 5000})
    response = await client.post(
        "/graphql",
        content=big,
        headers={"x-api-key": API_KEY, "content-type": "application/json"},
    )
    assert response.status_code == 413
    [error] = response.json()["errors"]
    assert error["errorType"] == "MalformedHttpRequestException" and "4096" in error["message"]


def _app() -> Any:
    reader = InMemoryReader(products=make_products(5))
    return create_app(
        LIMITED,
        runtime_factory=runtime_factory(fake_runtime(reader, InProcessBroker())),
        realtime=RealtimeOptions(keepalive_seconds=60),
    )


async def test_over_a_limit_at_an_appsync_start() -> None:
    app = _app()
    subscription = "subscription { onOrderChanged { id lines { unitPrice { amount } } } }"
    async with client_for(app):
        socket = AsgiWebSocket(
            app,
            "/graphql/realtime",
            subprotocols=["graphql-ws"],
            query=appsync_query(api_key_auth()),
        )
        async with socket as ws:
            await connect(ws)
            data = json.dumps({"query": subscription, "variables": {}})
            await ws.send_json(
                {
                    "id": "1",
                    "type": "start",
                    "payload": {"data": data, "extensions": {"authorization": api_key_auth()}},
                }
            )
            reply = await ws.receive_json()
    assert reply["type"] == "error" and reply["id"] == "1"
    [error] = reply["payload"]["errors"]
    assert error["errorType"] == "ValidationError" and "depth of 4" in error["message"]


async def test_over_a_limit_at_a_graphql_transport_ws_subscribe() -> None:
    app = _app()
    socket = AsgiWebSocket(app, "/graphql", subprotocols=["graphql-transport-ws"])
    async with client_for(app), socket as ws:
        await ws.send_json({"type": "connection_init", "payload": {"x-api-key": API_KEY}})
        assert await ws.receive_json() == {"type": "connection_ack"}
        query = "subscription { onOrderChanged { id lines { unitPrice { amount } } } }"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
        reply = await ws.receive_json()
    assert reply["type"] == "error" and reply["id"] == "1"
    [error] = reply["payload"]
    assert error["errorType"] == "ValidationError" and "depth of 4" in error["message"]


async def test_an_alias_bomb_is_a_cheap_refusal_with_the_default_limits() -> None:
    """10,000 aliases of `region { epoch }` (240 KB) used to hold the process for ~10 s."""
    app = create_app(
        with_settings(), runtime_factory=runtime_factory(fake_runtime(InMemoryReader()))
    )
    bomb = "{ " + " ".join(f"a{i}: region {{ epoch }}" for i in range(10_000)) + " }"
    async with client_for(app) as client:
        response = await post(client, bomb)
    [error] = response.json()["errors"]
    assert error["errorType"] == "ValidationError" and "tokens" in error["message"]
