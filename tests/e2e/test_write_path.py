"""The write path through `hemisphere serve` (embedded stack): a real AppSync client checks
out, cancels and updates a profile; the outcomes arrive in the projections."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from gql import Client, GraphQLRequest, gql
from gql.transport.appsync_auth import AppSyncJWTAuthentication
from gql.transport.appsync_websockets import AppSyncWebsocketsTransport

from tests.e2e.test_serve import Served, customer_token, start_serve, token_client

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = start_serve(tmp_path_factory.mktemp("write") / "data")
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()


CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) { id status } }"""
ORDER = """query($id: ID!) { order(id: $id) { id status failureReason total { amount }
    history { status } } }"""


async def run(client: Client, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    async with client as session:
        result: dict[str, Any] = await session.execute(
            GraphQLRequest(query, variable_values=variables)
        )
    return result


async def until(client: Client, order_id: str, statuses: set[str], seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        order = (await run(client, ORDER, {"id": order_id}))["order"]
        if order is not None and order["status"] in statuses:
            return order
        assert time.monotonic() < deadline, f"order {order_id} stayed {order}"
        await asyncio.sleep(0.1)


def checkout(token: str, product: str = "p-0010", quantity: int = 1) -> dict[str, Any]:
    return {
        "input": {
            "customerId": "c-0002",
            "lines": [{"productId": product, "quantity": quantity}],
            "paymentToken": token,
            "idempotencyKey": uuid.uuid4().hex,
        }
    }


async def test_checkout_confirms_and_cancel_refunds(served: Served) -> None:
    client = token_client(served, "c-0002")
    placed = (await run(client, CHECKOUT, checkout("tok_visa")))["checkout"]
    assert placed["status"] == "PENDING"
    confirmed = await until(client, placed["id"], {"CONFIRMED", "FAILED"})
    assert confirmed["status"] == "CONFIRMED", confirmed
    assert [h["status"] for h in confirmed["history"]][-1] == "CONFIRMED"

    cancel = 'mutation($id: ID!) { cancelOrder(id: $id, idempotencyKey: "c1") { id } }'
    await run(client, cancel, {"id": placed["id"]})
    cancelled = await until(client, placed["id"], {"CANCELLED"})
    assert cancelled["status"] == "CANCELLED"


async def test_a_declined_card_fails_the_order(served: Served) -> None:
    client = token_client(served, "c-0002")
    placed = (await run(client, CHECKOUT, checkout("tok_chargeDeclined")))["checkout"]
    failed = await until(client, placed["id"], {"FAILED", "CONFIRMED"})
    assert failed["status"] == "FAILED" and failed["failureReason"] == "PAYMENT_DECLINED"


async def test_profile_update_reaches_the_projection(served: Served) -> None:
    client = token_client(served, "c-0003")
    key = uuid.uuid4().hex
    mutation = """mutation($input: CustomerProfileInput!) {
        updateCustomerProfile(input: $input) { requestId acceptedAt } }"""
    receipt = await run(
        client,
        mutation,
        {"input": {"customerId": "c-0003", "name": f"Renamed {key[:6]}", "idempotencyKey": key}},
    )
    assert receipt["updateCustomerProfile"]["requestId"]
    started = time.monotonic()
    while True:
        customer = await run(client, 'query { customer(id: "c-0003") { name } }', {})
        if customer["customer"]["name"] == f"Renamed {key[:6]}":
            break
        assert time.monotonic() - started < 5, customer
        await asyncio.sleep(0.05)


async def test_subscribers_see_the_saga_through_the_change_stream(served: Served) -> None:
    """checkout → saga → PostgreSQL → outbox → projection → DynamoDB stream → publisher →
    publishOrder → broker → this AppSync real-time subscriber."""
    auth = AppSyncJWTAuthentication(
        host=f"127.0.0.1:{served.port}", jwt=customer_token(served, "c-0005")
    )
    transport = AppSyncWebsocketsTransport(url=f"ws://127.0.0.1:{served.port}/graphql", auth=auth)
    subscription = gql("subscription($c: ID) { onOrderChanged(customerId: $c) { id status } }")
    subscription.variable_values = {"c": "c-0005"}
    seen: list[tuple[str, str]] = []
    async with Client(transport=transport) as session:

        async def listen() -> None:
            async for event in session.subscribe(subscription):
                change = event["onOrderChanged"]
                seen.append((change["id"], change["status"]))
                if change["status"] == "CONFIRMED":
                    return

        listening = asyncio.create_task(listen())
        await asyncio.sleep(1)  # the subscription is registered after start_ack
        body = checkout("tok_visa") | {}
        body["input"]["customerId"] = "c-0005"
        placed = (await run(token_client(served, "c-0005"), CHECKOUT, body))["checkout"]
        await asyncio.wait_for(listening, timeout=30)
    statuses = [status for order_id, status in seen if order_id == placed["id"]]
    assert statuses[-1] == "CONFIRMED"
    assert "PENDING" in statuses or "RESERVED" in statuses
