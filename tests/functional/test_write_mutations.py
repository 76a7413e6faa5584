"""checkout, cancelOrder and updateCustomerProfile over fake ports: validation against the
projections, idempotency, read-only regions, and the answers clients get."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from domain.model import Money, OrderStatus
from domain.saga import order_id_for
from hemisphere.app import create_app
from tests.support.app import (
    API_KEY,
    SETTINGS,
    client_for,
    fake_runtime,
    runtime_factory,
    sigv4_headers,
    token_headers,
)
from tests.support.fakes import (
    FakeProfileUpdates,
    FakeWorkflows,
    InMemoryReader,
    make_customer,
    make_order,
    make_products,
)

PRODUCTS = make_products(5)
CUSTOMER = make_customer(1)
CONFIRMED = make_order(1, CUSTOMER, PRODUCTS[0])
FAILED = replace(make_order(2, CUSTOMER, PRODUCTS[0]), status=OrderStatus.FAILED)
EURO = replace(make_products(6)[5], id="p-euro", price=Money(500, "EUR"))

CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) {
    id customerId customerName status total { amount currency } placedIn version
    lines { productId productName quantity unitPrice { amount } } history { status } } }"""


@pytest.fixture
def workflows() -> FakeWorkflows:
    return FakeWorkflows()


@pytest.fixture
def profiles() -> FakeProfileUpdates:
    return FakeProfileUpdates()


@pytest.fixture
def reader() -> InMemoryReader:
    return InMemoryReader(
        products=[*PRODUCTS, EURO], customers=[CUSTOMER], orders=[CONFIRMED, FAILED]
    )


@pytest.fixture
async def client(
    workflows: FakeWorkflows, profiles: FakeProfileUpdates, reader: InMemoryReader
) -> AsyncIterator[httpx.AsyncClient]:
    runtime = fake_runtime(reader, workflows=workflows, profiles=profiles)
    async with client_for(create_app(SETTINGS, runtime_factory=runtime_factory(runtime))) as c:
        yield c


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """As the customer the input names (contract v2: a token caller acts for itself), or as
    `headers` say."""
    if headers is None:
        customer = variables.get("input", {}).get("customerId", CUSTOMER.id)
        headers = token_headers(customer)
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def checkout_input(key: str = "k-1", **changes: Any) -> dict[str, Any]:
    value = {
        "customerId": CUSTOMER.id,
        "lines": [{"productId": "p-0001", "quantity": 2}, {"productId": "p-0003", "quantity": 1}],
        "paymentToken": "tok_visa",
        "idempotencyKey": key,
    }
    return value | changes


async def test_checkout_starts_the_saga_and_answers_pending(
    client: httpx.AsyncClient, workflows: FakeWorkflows
) -> None:
    body = await gql(client, CHECKOUT, {"input": checkout_input()})
    order = body["data"]["checkout"]
    assert order["id"] == order_id_for(CUSTOMER.id, "k-1")
    assert order["status"] == "PENDING" and order["history"] == [{"status": "PENDING"}]
    assert order["customerName"] == CUSTOMER.name and order["placedIn"] == "us-east-1"
    assert order["total"] == {"amount": 2 * 100 + 300, "currency": "USD"}
    assert [ln["productName"] for ln in order["lines"]] == ["Product 1", "Product 3"]
    assert list(workflows.checkouts) == [order["id"]]


async def test_same_key_same_request_is_the_same_order(
    client: httpx.AsyncClient, workflows: FakeWorkflows
) -> None:
    first = await gql(client, CHECKOUT, {"input": checkout_input()})
    again = await gql(client, CHECKOUT, {"input": checkout_input()})
    assert again["data"]["checkout"]["id"] == first["data"]["checkout"]["id"]
    assert len(workflows.checkouts) == 1


async def test_a_first_checkout_reads_no_order_and_a_repeat_answers_the_projected_one(
    client: httpx.AsyncClient, workflows: FakeWorkflows, reader: InMemoryReader
) -> None:
    first = await gql(client, CHECKOUT, {"input": checkout_input()})
    order_id = first["data"]["checkout"]["id"]
    # The start said it was the first: there is no order to read yet.
    assert not [call for call in reader.calls if call[0] == "orders_by_id"]
    # The saga ran; the same request again is answered with the order as projected.
    reader.orders[order_id] = replace(CONFIRMED, id=order_id, version=3)
    again = await gql(client, CHECKOUT, {"input": checkout_input()})
    assert again["data"]["checkout"]["status"] == "CONFIRMED"
    assert again["data"]["checkout"]["version"] == 3
    assert ("orders_by_id", [order_id]) in reader.calls


async def test_same_key_other_request_is_a_conflict(client: httpx.AsyncClient) -> None:
    await gql(client, CHECKOUT, {"input": checkout_input()})
    other = checkout_input(paymentToken="tok_chargeDeclined")
    body = await gql(client, CHECKOUT, {"input": other})
    assert body["data"] == {"checkout": None}
    assert body["errors"][0]["errorType"] == "IdempotencyConflict"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"customerId": "c-9999"}, "customer c-9999 does not exist"),
        ({"lines": [{"productId": "p-nope", "quantity": 1}]}, "unknown products: p-nope"),
        ({"lines": [{"productId": "p-0001", "quantity": 0}]}, "quantity"),
        ({"lines": [{"productId": "p-0001", "quantity": 101}]}, "quantity"),
        ({"lines": []}, "at least one line"),
        ({"lines": [{"productId": "p-0001", "quantity": 1}] * 51}, "at most 50 lines"),
        (
            {
                "lines": [
                    {"productId": "p-0001", "quantity": 1},
                    {"productId": "p-euro", "quantity": 1},
                ]
            },
            "one currency",
        ),
        ({"idempotencyKey": ""}, "idempotencyKey"),
    ],
)
async def test_bad_checkouts_are_bad_requests_and_start_nothing(
    client: httpx.AsyncClient, workflows: FakeWorkflows, changes: dict[str, Any], message: str
) -> None:
    body = await gql(client, CHECKOUT, {"input": checkout_input(**changes)})
    [error] = body["errors"]
    assert error["errorType"] == "BadRequestException" and message in error["message"]
    assert workflows.checkouts == {}


async def test_a_region_without_its_primary_is_read_only(
    client: httpx.AsyncClient, workflows: FakeWorkflows
) -> None:
    workflows.reachable = False
    body = await gql(client, CHECKOUT, {"input": checkout_input()})
    assert body["errors"][0]["errorType"] == "ReadOnlyRegion"
    assert workflows.checkouts == {}


CANCEL = (
    "mutation($id: ID!, $k: String!) { cancelOrder(id: $id, idempotencyKey: $k) { id status } }"
)


async def test_cancel_a_confirmed_order(
    client: httpx.AsyncClient, workflows: FakeWorkflows
) -> None:
    body = await gql(client, CANCEL, {"id": CONFIRMED.id, "k": "c-1"})
    assert body["data"]["cancelOrder"] == {"id": CONFIRMED.id, "status": "CONFIRMED"}
    assert [c.order_id for c in workflows.cancellations] == [CONFIRMED.id]


async def test_cancel_anything_else_is_a_clear_error(
    client: httpx.AsyncClient, workflows: FakeWorkflows
) -> None:
    body = await gql(client, CANCEL, {"id": FAILED.id, "k": "c-1"})
    assert body["errors"][0]["errorType"] == "OrderNotCancellable"
    assert "FAILED" in body["errors"][0]["message"]
    body = await gql(client, CANCEL, {"id": "o-missing", "k": "c-1"})
    assert body["errors"][0]["errorType"] == "NotFound"
    assert workflows.cancellations == []


PROFILE = """mutation($input: CustomerProfileInput!) {
    updateCustomerProfile(input: $input) { requestId acceptedAt } }"""


async def test_profile_update_is_accepted_at_once(
    client: httpx.AsyncClient, profiles: FakeProfileUpdates
) -> None:
    body = await gql(
        client,
        PROFILE,
        {"input": {"customerId": CUSTOMER.id, "name": "Ada King", "idempotencyKey": "p-1"}},
    )
    assert body["data"]["updateCustomerProfile"] == {
        "requestId": f"req-{CUSTOMER.id}-p-1",
        "acceptedAt": "2026-01-01T00:00:00.000Z",
    }
    assert profiles.submitted[0].name == "Ada King"


async def test_profile_update_validation(
    client: httpx.AsyncClient, profiles: FakeProfileUpdates
) -> None:
    cases = [
        ({"customerId": CUSTOMER.id, "idempotencyKey": "p-1"}, "BadRequestException"),
        ({"customerId": "c-9999", "name": "X", "idempotencyKey": "p-1"}, "NotFound"),
        ({"customerId": CUSTOMER.id, "email": "nope", "idempotencyKey": "p-1"}, "ValidationError"),
    ]
    for value, error_type in cases:
        body = await gql(client, PROFILE, {"input": value})
        assert body["errors"][0]["errorType"] == error_type, body
    assert profiles.submitted == []


# Contract v2: customer writes need an identity, and a token acts only for its own customer.


async def iam(client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": variables}).encode()
    headers = sigv4_headers("http://testserver/graphql", body)
    response = await client.post("/graphql", content=body, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.mark.parametrize("caller", ["api key", "another customer's token"])
async def test_a_customer_write_by_anyone_else_is_unauthorized_and_starts_nothing(
    client: httpx.AsyncClient,
    workflows: FakeWorkflows,
    profiles: FakeProfileUpdates,
    caller: str,
) -> None:
    headers = {"x-api-key": API_KEY} if caller == "api key" else token_headers("c-0002")
    profile = {"customerId": CUSTOMER.id, "name": "Mallory", "idempotencyKey": "p-1"}
    for query, variables, field in (
        (CHECKOUT, {"input": checkout_input()}, "checkout"),
        (CANCEL, {"id": CONFIRMED.id, "k": "c-1"}, "cancelOrder"),
        (PROFILE, {"input": profile}, "updateCustomerProfile"),
    ):
        body = await gql(client, query, variables, headers)
        assert body["data"] == {field: None}, body
        assert body["errors"][0]["errorType"] == "Unauthorized"
        assert body["errors"][0]["message"] == f"Not Authorized to access {field} on type Mutation"
    assert workflows.checkouts == {} and workflows.cancellations == []
    assert profiles.submitted == []


async def test_iam_writes_for_any_customer(
    client: httpx.AsyncClient, workflows: FakeWorkflows, profiles: FakeProfileUpdates
) -> None:
    placed = await iam(client, CHECKOUT, {"input": checkout_input()})
    assert placed["data"]["checkout"]["status"] == "PENDING"
    cancelled = await iam(client, CANCEL, {"id": CONFIRMED.id, "k": "c-1"})
    assert cancelled["data"]["cancelOrder"]["id"] == CONFIRMED.id
    profile = {"customerId": CUSTOMER.id, "name": "Ada King", "idempotencyKey": "p-1"}
    assert "errors" not in await iam(client, PROFILE, {"input": profile})
    assert len(workflows.checkouts) == 1 and len(workflows.cancellations) == 1
    assert len(profiles.submitted) == 1
