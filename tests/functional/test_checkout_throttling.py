"""A saturated write path through the API: the checkout is refused with AppSync's error shape
(errorType ThrottlingException, errorInfo.retryable and retryAfterSeconds), nothing is started,
and the same request goes through once the sagas in flight drain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from domain.saga import order_id_for
from hemisphere.app import create_app
from tests.support.app import SETTINGS, client_for, fake_runtime, runtime_factory, token_headers
from tests.support.fakes import FakeWorkflows, InMemoryReader, make_customer, make_products
from workflows.admission import AdmissionLimits, AdmittedOrderWorkflows, SagaAdmission

CUSTOMER = make_customer(1)
CHECKOUT = "mutation($input: CheckoutInput!) { checkout(input: $input) { id status } }"


class Queue:
    """The task queue's depth as the test sets it."""

    def __init__(self) -> None:
        self.depth = 0

    async def __call__(self) -> int:
        return self.depth


@pytest.fixture
def queue() -> Queue:
    return Queue()


@pytest.fixture
def workflows() -> FakeWorkflows:
    return FakeWorkflows()


@pytest.fixture
def reader() -> InMemoryReader:
    return InMemoryReader(products=make_products(3), customers=[CUSTOMER])


@pytest.fixture
async def client(
    queue: Queue, workflows: FakeWorkflows, reader: InMemoryReader
) -> AsyncIterator[httpx.AsyncClient]:
    # refresh_seconds tiny: every request sees the depth the test set.
    limits = AdmissionLimits(max_in_flight=2, refresh_seconds=1e-9, retry_after_seconds=0.5)
    gated = AdmittedOrderWorkflows(workflows, SagaAdmission(queue, limits))
    runtime = fake_runtime(reader, workflows=gated)
    async with client_for(create_app(SETTINGS, runtime_factory=runtime_factory(runtime))) as c:
        yield c


async def checkout(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
    variables = {
        "input": {
            "customerId": CUSTOMER.id,
            "lines": [{"productId": "p-0001", "quantity": 1}],
            "paymentToken": "tok_visa",
            "idempotencyKey": key,
        }
    }
    response = await client.post(
        "/graphql",
        json={"query": CHECKOUT, "variables": variables},
        headers=token_headers(CUSTOMER.id),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_saturated_write_path_refuses_with_a_retryable_throttling_error(
    client: httpx.AsyncClient, queue: Queue, workflows: FakeWorkflows, reader: InMemoryReader
) -> None:
    queue.depth = 2
    body = await checkout(client, "k-1")
    assert body["data"] == {"checkout": None}
    error = body["errors"][0]
    assert error["errorType"] == "ThrottlingException"
    assert error["errorInfo"] == {"retryable": True, "retryAfterSeconds": 0.75}
    assert error["path"] == ["checkout"]
    assert "too many orders in progress" in error["message"]
    assert workflows.checkouts == {}  # nothing started
    assert reader.calls == []  # and nothing read: a refusal is cheap

    queue.depth = 1  # the workers caught up: the same request is accepted
    accepted = await checkout(client, "k-1")
    assert "errors" not in accepted
    assert accepted["data"]["checkout"] == {
        "id": order_id_for(CUSTOMER.id, "k-1"),
        "status": "PENDING",
    }
    assert list(workflows.checkouts) == [order_id_for(CUSTOMER.id, "k-1")]
