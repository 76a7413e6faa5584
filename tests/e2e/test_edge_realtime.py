"""Real subscription clients through the edge to a running Hemisphere (uvicorn, fake read side,
in-process broker): gql's AppSync transport (a customer's token, as contract v2 wants for
order subscriptions, and IAM signed for the edge's host) and its graphql-transport-ws
transport (a token in its connection_init), with the `global` preset's 10 ms location RTT injected;
the change is published through the edge too (a SigV4-signed HTTP mutation, Host kept)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from botocore.credentials import Credentials
from gql.transport.appsync_auth import AppSyncIAMAuthentication, AppSyncJWTAuthentication
from gql.transport.appsync_websockets import AppSyncWebsocketsTransport
from gql.transport.websockets import WebsocketsTransport

from hemisphere.drill.realtime import subscribe_forever
from hemisphere.drill.records import Clock, Connection, Delivery
from hemisphere.drill.tokens import CustomerTokens
from regions import latency
from regions.edge_runner import EdgeSpec, EdgesSpec, RunningEdges, run_edges
from tests.e2e.test_realtime_clients import (
    PUBLISH,
    TS,
    VERSIONS,
    Running,
    gql_subscriber,
    request,
    running_server,
    stop,
    until,
)
from tests.support.app import API_KEY, IAM_AKID, IAM_SECRET, ISSUER, sigv4_headers

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def region() -> Iterator[Running]:
    with running_server() as running:
        yield running


@dataclass
class Edge:
    port: int
    running: RunningEdges

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}/graphql"

    async def publish(self, customer: str, amount: int) -> None:
        """The region's publisher's mutation, signed for the edge's host, sent through it."""
        order: dict[str, Any] = {
            "id": f"o-{customer}-{amount}",
            "customerId": customer,
            "customerName": f"Customer {customer}",
            "status": "CONFIRMED",
            "lines": [],
            "total": {"amount": amount, "currency": "USD"},
            "failureReason": None,
            "history": [],
            "placedIn": "us-east-1",
            "createdAt": TS,
            "updatedAt": TS,
            "version": next(VERSIONS),
        }
        body = json.dumps({"query": PUBLISH, "variables": {"input": order}}).encode()
        async with httpx.AsyncClient() as http:
            response = await http.post(
                self.url, content=body, headers=sigv4_headers(self.url, body)
            )
        assert response.status_code == 200 and "errors" not in response.json(), response.text
        assert response.headers["x-hemisphere-region"] == "us-east-1"


@pytest.fixture
async def edge(region: Running) -> AsyncIterator[Edge]:
    spec = EdgesSpec(
        matrix=latency.GLOBAL,
        regions={"us-east-1": f"http://{region.host}"},
        edges=[EdgeSpec("us-east-1", "127.0.0.1", 0)],
        interval=0.2,
    )
    ready: asyncio.Future[RunningEdges] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_edges(spec, ready.set_result))
    running = await asyncio.wait_for(ready, 20)
    yield Edge(running.ports["us-east-1"], running)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _subscribed(edge: Edge, factory: Callable[[], Any], customer: str) -> Any:
    """A subscriber through the edge that has received a first change (the warm-up: neither
    protocol acknowledges a subscription to gql's caller)."""
    subscriber = await gql_subscriber(factory, request(customer))
    for _ in range(200):
        if subscriber.received:
            break
        await edge.publish(customer, 1)
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the subscriber never received its first change")
    await asyncio.sleep(0.2)
    subscriber.received.clear()
    return subscriber


async def test_gql_appsync_token_through_the_edge(edge: Edge) -> None:
    auth = AppSyncJWTAuthentication(host=edge.host, jwt=ISSUER.token("c-edge-token"))
    subscriber = await _subscribed(
        edge, lambda: AppSyncWebsocketsTransport(url=edge.ws_url, auth=auth), "c-edge-token"
    )
    try:
        await edge.publish("c-edge-token", 4200)
        await until(lambda: subscriber.ids() == ["o-c-edge-token-4200"])
        status = edge.running.routers[0].status()
        assert status["regions"]["us-east-1"]["websockets"] == 1
    finally:
        await stop(subscriber)


async def test_gql_appsync_iam_through_the_edge(edge: Edge) -> None:
    auth = AppSyncIAMAuthentication(
        host=edge.host, region_name="us-east-1", credentials=Credentials(IAM_AKID, IAM_SECRET)
    )
    subscriber = await _subscribed(
        edge, lambda: AppSyncWebsocketsTransport(url=edge.ws_url, auth=auth), "c-edge-iam"
    )
    try:
        await edge.publish("c-edge-iam", 77)
        await until(lambda: subscriber.ids() == ["o-c-edge-iam-77"])
    finally:
        await stop(subscriber)


async def test_gql_graphql_transport_ws_through_the_edge(edge: Edge) -> None:
    def transport() -> WebsocketsTransport:
        return WebsocketsTransport(
            url=edge.ws_url,
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            init_payload={"authorization": ISSUER.token("c-edge-gtw")},
        )

    subscriber = await _subscribed(edge, transport, "c-edge-gtw")
    try:
        await edge.publish("c-edge-gtw", 31)
        await until(lambda: subscriber.ids() == ["o-c-edge-gtw-31"])
    finally:
        await stop(subscriber)


async def test_the_drills_subscriber_follows_each_shopper_with_its_token(edge: Edge) -> None:
    """hemisphere/drill/realtime.py as `hemisphere drill` runs it: one connection with the API
    key, one order subscription per customer, each `start` authorized by that customer's
    token; it is established once every start is acknowledged, and gets those customers'
    orders only."""
    deliveries: list[Delivery] = []
    connections: list[Connection] = []
    task = asyncio.create_task(
        subscribe_forever(
            "us-east-1",
            f"ws://{edge.host}/graphql/realtime",
            API_KEY,
            ["c-drill-1", "c-drill-2"],
            CustomerTokens(ISSUER),
            Clock(),
            deliveries,
            connections,
        )
    )
    try:
        await until(lambda: [c.state for c in connections] == ["established"])
        for customer, amount in (("c-drill-1", 1), ("c-other", 2), ("c-drill-2", 3)):
            await edge.publish(customer, amount)
        await until(lambda: len(deliveries) == 2)
        await asyncio.sleep(0.3)
        assert sorted(d.order_id for d in deliveries) == ["o-c-drill-1-1", "o-c-drill-2-3"]
        assert [c.state for c in connections] == ["established"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
