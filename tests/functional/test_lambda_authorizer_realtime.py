"""AWS_LAMBDA over both real-time protocols, with a real authorizer on a port: AppSync's (the
token in the connection's header and in each start's authorization) and graphql-transport-ws
(the token as `Authorization` in connection_init). A subscription that selects a denied
field is refused when it subscribes, and nothing reaches the broker for it."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from hemisphere.app import create_app
from hemisphere.http.realtime_options import RealtimeOptions
from subscriptions.inprocess import InProcessBroker
from tests.functional.test_realtime_appsync import (
    HOST,
    AsgiWebSocket,
    Closed,
    appsync_query,
    connect,
    start,
    started,
)
from tests.support.app import (
    client_for,
    fake_runtime,
    runtime_factory,
    sigv4_headers,
    with_settings,
)
from tests.support.fakes import InMemoryReader
from tests.support.lambda_authorizer import StandIn, running_authorizer

ANSWERS: dict[str, Any] = {
    "reader": {"isAuthorized": True, "resolverContext": {"customerId": "c-0001"}},
    "no-products": {"isAuthorized": True, "deniedFields": ["Subscription.onProductChanged"]},
    "no-prices": {"isAuthorized": True, "deniedFields": ["Money.amount"]},
}
ON_PRODUCT = "subscription { onProductChanged { id name price { amount currency } } }"
PUBLISH = """mutation P($input: ProductPublication!) { publishProduct(input: $input) {
  id sku name description category price { amount currency } available updatedAt version } }"""
VERSIONS = itertools.count(1)


@pytest.fixture(scope="module")
def authorizer() -> Iterator[StandIn]:
    with running_authorizer(ANSWERS) as stand_in:
        yield stand_in


class Api:
    def __init__(self, app: Starlette, http: httpx.AsyncClient, broker: InProcessBroker) -> None:
        self.app, self.http, self.broker = app, http, broker

    def subscribers(self) -> int:
        return self.broker.subscriber_count("publishProduct")

    async def publish(self, id: str = "p-0001") -> None:
        product = {
            "id": id,
            "sku": "SKU-1",
            "name": "Lamp",
            "description": None,
            "category": "lighting",
            "price": {"amount": 1999, "currency": "USD"},
            "available": 3,
            "updatedAt": "2026-01-01T00:00:00.000Z",
            "version": next(VERSIONS),
        }
        body = json.dumps({"query": PUBLISH, "variables": {"input": product}}).encode()
        headers = sigv4_headers(f"http://{HOST}/graphql", body)
        response = await self.http.post("/graphql", content=body, headers=headers)
        assert response.status_code == 200 and "errors" not in response.json(), response.text


@pytest.fixture
async def api(authorizer: StandIn) -> AsyncIterator[Api]:
    broker = InProcessBroker()
    app = create_app(
        with_settings(lambda_authorizer_url=authorizer.url),
        runtime_factory=runtime_factory(fake_runtime(InMemoryReader(), broker)),
        realtime=RealtimeOptions(keepalive_seconds=60),
    )
    async with client_for(app) as http:
        yield Api(app, http, broker)


def lambda_auth(token: str) -> dict[str, str]:
    # What Amplify's `lambda` mode sends: the token as Authorization, beside the host.
    return {"host": HOST, "Authorization": token}


def appsync_socket(api: Api, token: str) -> AsgiWebSocket:
    return AsgiWebSocket(
        api.app,
        "/graphql/realtime",
        query=appsync_query(lambda_auth(token)),
        subprotocols=["graphql-ws"],
    )


async def test_appsync_realtime_with_a_lambda_token(api: Api, authorizer: StandIn) -> None:
    async with appsync_socket(api, "reader") as ws:
        assert (await connect(ws))["type"] == "connection_ack"
        await started(ws, start("1", query=ON_PRODUCT, auth=lambda_auth("reader")))
        await api.publish()
        reply = await ws.receive_json()
        assert reply["type"] == "data" and reply["id"] == "1"
        assert reply["payload"]["data"]["onProductChanged"] == {
            "id": "p-0001",
            "name": "Lamp",
            "price": {"amount": 1999, "currency": "USD"},
        }
    # The connection and the start each asked (no caching configured): AppSync's request.
    asked = [r for r in authorizer.requests if r["authorizationToken"] == "reader"]
    assert [r["requestContext"]["queryString"] for r in asked[-2:]] == ["", ON_PRODUCT]


async def test_appsync_realtime_refuses_an_unknown_token(api: Api) -> None:
    async with appsync_socket(api, "stranger") as ws:
        reply = await connect(ws)
    assert reply["type"] == "connection_error"
    assert reply["payload"]["errors"][0]["errorType"] == "UnauthorizedException"


@pytest.mark.parametrize(
    ("token", "field", "type_name"),
    [("no-products", "onProductChanged", "Subscription"), ("no-prices", "amount", "Money")],
)
async def test_appsync_realtime_refuses_a_subscription_selecting_a_denied_field(
    api: Api, token: str, field: str, type_name: str
) -> None:
    async with appsync_socket(api, token) as ws:
        assert (await connect(ws))["type"] == "connection_ack"
        await ws.send_json(start("1", query=ON_PRODUCT, auth=lambda_auth(token)))
        reply = await ws.receive_json()
    assert reply["type"] == "error" and reply["id"] == "1"
    [error] = reply["payload"]["errors"]
    assert error["errorType"] == "Unauthorized"
    assert error["message"] == f"Not Authorized to access {field} on type {type_name}"
    assert api.subscribers() == 0


def transport_ws(api: Api) -> AsgiWebSocket:
    return AsgiWebSocket(api.app, "/graphql", subprotocols=["graphql-transport-ws"])


def subscribe(id: str) -> dict[str, Any]:
    return {"id": id, "type": "subscribe", "payload": {"query": ON_PRODUCT}}


async def test_graphql_transport_ws_with_a_lambda_token(api: Api) -> None:
    async with transport_ws(api) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": "reader"}})
        assert await ws.receive_json() == {"type": "connection_ack"}
        await ws.send_json(subscribe("1"))
        for _ in range(500):
            if api.subscribers() == 1:
                break
            await ws.nothing_within(0.01)
        await api.publish()
        reply = await ws.receive_json()
        assert reply["type"] == "next" and reply["id"] == "1"
        assert reply["payload"]["data"]["onProductChanged"]["name"] == "Lamp"


async def test_graphql_transport_ws_refuses_a_denied_subscription_and_a_bad_token(
    api: Api,
) -> None:
    async with transport_ws(api) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": "no-prices"}})
        assert await ws.receive_json() == {"type": "connection_ack"}
        await ws.send_json(subscribe("1"))
        reply = await ws.receive_json()
        assert reply["type"] == "error" and reply["id"] == "1"
        assert reply["payload"][0]["message"] == "Not Authorized to access amount on type Money"
    async with transport_ws(api) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": "stranger"}})
        with pytest.raises(Closed):
            await ws.receive_json()
        assert ws.close_code == 4403
    assert api.subscribers() == 0
