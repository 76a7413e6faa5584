"""The exported APPSYNC_JS resolvers, executed in Node against the backends a running
Hemisphere uses (its moto DynamoDB with the demo data, Step Functions, EventBridge, its
PostgreSQL), answer as Hemisphere answers: the README's read queries, pagination included;
checkout starting the very execution Hemisphere starts; profile updates and catalog writes
reaching the projections."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from adapters.eventbridge import profile_update_request_id
from domain.commands import CancelOrder, Checkout, CheckoutLine
from domain.errors import BackendUnavailableError
from domain.saga import (
    cancel_execution_name,
    cancel_input,
    checkout_execution_name,
    checkout_input,
    order_id_for,
)
from hemisphere.app import create_app
from hemisphere.bootstrap import start_runtime
from hemisphere.runtime import StartupOptions
from hemisphere.settings import Settings
from tests.support.app import API_KEY, SETTINGS, client_for, sigv4_headers
from tests.support.appsync_harness import HarnessConfig, export_to, require_node, run_harness
from tests.support.stack import database_from_template

pytestmark = pytest.mark.integration

LOCAL_KEY = "hemisphere-local"

PRODUCT = """query { product(id: "p-0001") {
  id sku name description category price { amount currency } available updatedAt version } }"""
MISSING = """query { product(id: "p-9999") { id } customer(id: "c-9999") { id } }"""
REGION = "query { region { region primaryRegion readOnly epoch } }"
CUSTOMER = """query { customer(id: "c-0001") {
  id name email homeRegion loyaltyPoints updatedAt version } }"""
PRODUCTS_IN_CATEGORY = """query Shop($token: String) {
  products(category: "books", limit: 5, nextToken: $token) {
    items { id name price { amount currency } available } nextToken } }"""
ALL_PRODUCTS = """query All($token: String) {
  products(limit: 100, nextToken: $token) { items { id category version } nextToken } }"""
DEFAULT_PAGE = """query Default($token: String) {
  products(category: "garden", nextToken: $token) { items { id } nextToken } }"""
ORDERS = """query Orders($token: String) {
  ordersByCustomer(customerId: "c-0001", limit: 3, nextToken: $token) {
    items { id status total { amount currency } lines { productName quantity }
            history { status at } customerName placedIn createdAt }
    nextToken } }"""
BAD_LIMIT = """query { products(limit: 0) { items { id } } }"""


@dataclass
class Stack:
    client: httpx.AsyncClient
    settings: Settings
    node: str
    export_dir: Path
    harness: HarnessConfig

    async def hemisphere(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"x-api-key": API_KEY},
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def hemisphere_iam(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        response = await self.client.post(
            "/graphql",
            content=body,
            headers=sigv4_headers("http://testserver/graphql", body),
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def hemisphere_pages(self, query: str, field: str) -> list[Any]:
        pages, token = [], None
        while True:
            answer = await self.hemisphere(query, {"token": token})
            pages.append(answer)
            token = answer["data"][field]["nextToken"]
            if token is None:
                return pages

    async def appsync(
        self, *requests: dict[str, Any], config: HarnessConfig | None = None
    ) -> list[Any]:
        # The harness is a blocking child process: keep the event loop (and so the workers
        # of the Hemisphere under test) running meanwhile.
        return await asyncio.to_thread(
            run_harness, self.node, self.export_dir, config or self.harness, list(requests)
        )


@pytest.fixture(scope="module")
async def stack(
    database_url: str,
    migrated_template: str,
    aws_endpoint: str,
    payments_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    """One Hemisphere with the demo data for the module (starting one costs seconds); the
    tests write with keys, customers and products of their own."""
    node = require_node()
    table_name = f"hemisphere-appsync-{uuid.uuid4().hex[:12]}"
    async with database_from_template(database_url, migrated_template) as pg_dsn:
        settings = replace(
            SETTINGS,
            payments_url=payments_url,
            database_url=pg_dsn,
            aws_endpoint_url=aws_endpoint,
            aws_access_key_id=LOCAL_KEY,
            aws_secret_access_key=LOCAL_KEY,
            table_name=table_name,
        )

        def factory(s: Settings) -> Any:
            return start_runtime(s, StartupOptions(seed_demo_data=True, rebuild_projections=True))

        async with _started(settings, factory) as client:
            machines = _state_machines(aws_endpoint, settings.region)
            harness = HarnessConfig(
                endpoint=aws_endpoint,
                region=settings.region,
                table=table_name,
                database_url=pg_dsn,
                bus_name=settings.event_bus_name,
                env={
                    "REGION": settings.region,
                    "PRIMARY_REGION": settings.primary_region,
                    "TABLE_NAME": table_name,
                    "CHECKOUT_STATE_MACHINE_ARN": machines[f"{table_name}-checkout"],
                    "CANCEL_STATE_MACHINE_ARN": machines[f"{table_name}-cancel"],
                },
            )
            export_dir = export_to(tmp_path_factory.mktemp("appsync") / "export")
            yield Stack(client, settings, node, export_dir, harness)


@contextlib.asynccontextmanager
async def _started(settings: Settings, factory: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app, started; a start that found the local AWS endpoint too slow to answer (a
    loaded CI machine) is tried again, twice at most (seeding and table creation are
    idempotent)."""
    for attempt in range(3):
        stack = contextlib.AsyncExitStack()
        try:
            client = await stack.enter_async_context(
                client_for(create_app(settings, runtime_factory=factory))
            )
        except BackendUnavailableError:
            await stack.aclose()
            if attempt == 2:
                raise
            await asyncio.sleep(1)
            continue
        async with stack:
            yield client
        return


def _state_machines(endpoint: str, region: str) -> dict[str, str]:
    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=LOCAL_KEY,
        aws_secret_access_key=LOCAL_KEY,
    )
    machines = sfn.get_paginator("list_state_machines").paginate()
    return {m["name"]: m["stateMachineArn"] for page in machines for m in page["stateMachines"]}


def _items(pages: list[Any], field: str) -> list[Any]:
    return [item for page in pages for item in page["data"][field]["items"]]


async def test_the_readme_read_queries_answer_as_hemisphere(stack: Stack) -> None:
    single = [PRODUCT, MISSING, REGION, CUSTOMER]
    expected = [await stack.hemisphere(query) for query in single]
    answers = await stack.appsync(*({"query": query} for query in single))
    for mine, theirs in zip(answers, expected, strict=True):
        assert "errors" not in theirs, theirs
        assert mine == theirs, json.dumps([mine, theirs])
    assert answers[0]["data"]["product"]["id"] == "p-0001"
    assert answers[1]["data"] == {"product": None, "customer": None}


README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_queries() -> list[str]:
    """The read queries the README shows: its ```graphql query blocks and the curl example."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```graphql\n(.*?)```", text, re.S)
    queries = [block for block in blocks if block.lstrip().startswith(("query", "{"))]
    for payload in re.findall(r"-d '(\{\"query\".*?\})'", text):
        queries.append(json.loads(payload)["query"])
    return queries


def _tokens_as_presence(value: Any) -> Any:
    """Answers with each nextToken as whether there is one: the two APIs' tokens differ."""
    if isinstance(value, dict):
        return {
            k: (v is not None) if k == "nextToken" else _tokens_as_presence(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_tokens_as_presence(v) for v in value]
    return value


async def test_the_queries_written_in_the_readme_answer_as_hemisphere(stack: Stack) -> None:
    # Before the tests that write: a saga moving stock or an order's status between the two
    # reads would make them differ.
    queries = _readme_queries()
    assert len(queries) >= 2, "the README's example queries were not found"
    requests: list[dict[str, Any]] = []
    for query in queries:
        paginated = "$token" in query
        requests.append({"query": query, **({"paginate": "products"} if paginated else {})})
    answers = await stack.appsync(*requests)
    for request, mine in zip(requests, answers, strict=True):
        if "paginate" in request:
            theirs = await stack.hemisphere_pages(request["query"], "products")
            assert len(mine) == len(theirs) > 1, request["query"]
        else:
            mine, theirs = [mine], [await stack.hemisphere(request["query"])]
        for my_page, their_page in zip(mine, theirs, strict=True):
            assert "errors" not in their_page, their_page
            assert _tokens_as_presence(my_page) == _tokens_as_presence(their_page), json.dumps(
                [my_page, their_page]
            )


async def test_pages_hold_the_same_items_in_the_same_order_as_hemisphere(stack: Stack) -> None:
    lists = [
        (PRODUCTS_IN_CATEGORY, "products"),
        (ALL_PRODUCTS, "products"),
        (DEFAULT_PAGE, "products"),
        (ORDERS, "ordersByCustomer"),
    ]
    answers = await stack.appsync(*({"query": q, "paginate": field} for q, field in lists))
    for (query, field), mine in zip(lists, answers, strict=True):
        theirs = await stack.hemisphere_pages(query, field)
        assert _items(mine, field) == _items(theirs, field), query
        # The same page boundaries: the same number of pages of the same sizes.
        assert [len(p["data"][field]["items"]) for p in mine] == [
            len(p["data"][field]["items"]) for p in theirs
        ], query
    books, every, _, orders = (
        _items(pages, field) for pages, (_, field) in zip(answers, lists, strict=True)
    )
    assert len(books) == 30 and len(every) >= 240
    assert len(answers[2][0]["data"]["products"]["items"]) == 20  # the default limit
    assert len(orders) == 4
    assert [o["createdAt"] for o in orders] == sorted(
        (o["createdAt"] for o in orders), reverse=True
    )


async def test_a_bad_limit_is_the_same_bad_request(stack: Stack) -> None:
    [mine] = await stack.appsync({"query": BAD_LIMIT})
    theirs = await stack.hemisphere(BAD_LIMIT)
    assert mine["errors"][0]["errorType"] == theirs["errors"][0]["errorType"]
    assert mine["errors"][0]["errorType"] == "BadRequestException"


CHECKOUT = """mutation($key: String!, $quantity: Int!) {
  checkout(input: {customerId: "c-0002", paymentToken: "tok_visa", idempotencyKey: $key,
                   lines: [{productId: "p-0003", quantity: $quantity}]}) {
    id status customerId customerName total { amount currency } lines { productId quantity }
  } }"""


async def test_checkout_starts_the_execution_hemisphere_would_start(stack: Stack) -> None:
    key = "appsync-harness-1"
    [started] = await stack.appsync({"query": CHECKOUT, "variables": {"key": key, "quantity": 2}})
    assert "errors" not in started, started
    order = started["data"]["checkout"]
    command = Checkout("c-0002", (CheckoutLine("p-0003", 2),), "tok_visa", key)
    order_id = order_id_for("c-0002", key)
    assert order["id"] == order_id and order["status"] == "PENDING"

    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=stack.settings.aws_endpoint_url,
        region_name=stack.settings.region,
        aws_access_key_id=LOCAL_KEY,
        aws_secret_access_key=LOCAL_KEY,
    )
    machine = stack.harness.env["CHECKOUT_STATE_MACHINE_ARN"]
    execution = sfn.describe_execution(
        executionArn=machine.replace(":stateMachine:", ":execution:")
        + ":"
        + checkout_execution_name(order_id)
    )
    assert json.loads(execution["input"]) == json.loads(checkout_input(command, "us-east-1"))

    # The same request through Hemisphere is the same order; another one under the key is a
    # conflict, whichever front end it comes through.
    again = await stack.hemisphere(CHECKOUT, {"key": key, "quantity": 2})
    assert "errors" not in again and again["data"]["checkout"]["id"] == order_id
    [conflict] = await stack.appsync({"query": CHECKOUT, "variables": {"key": key, "quantity": 3}})
    theirs = await stack.hemisphere(CHECKOUT, {"key": key, "quantity": 3})
    assert conflict["errors"][0]["errorType"] == theirs["errors"][0]["errorType"]
    assert conflict["errors"][0]["errorType"] == "IdempotencyConflict"


async def test_checkout_validation_errors_match(stack: Stack) -> None:
    bad = [
        'checkout(input: {customerId: "c-9999", paymentToken: "tok_visa", idempotencyKey: "k1",'
        ' lines: [{productId: "p-0001", quantity: 1}]}) { id }',
        'checkout(input: {customerId: "c-0001", paymentToken: "tok_visa", idempotencyKey: "k1",'
        ' lines: [{productId: "p-9999", quantity: 1}]}) { id }',
        'checkout(input: {customerId: "c-0001", paymentToken: "tok_visa", idempotencyKey: "k 1",'
        ' lines: [{productId: "p-0001", quantity: 1}]}) { id }',
        'checkout(input: {customerId: "c-0001", paymentToken: "tok_visa", idempotencyKey: "k1",'
        ' lines: [{productId: "p-0001", quantity: 101}]}) { id }',
        'cancelOrder(id: "o-unknown", idempotencyKey: "k1") { id }',
    ]
    queries = [f"mutation {{ {field} }}" for field in bad]
    answers = await stack.appsync(*({"query": q} for q in queries))
    for query, mine in zip(queries, answers, strict=True):
        theirs = await stack.hemisphere(query)
        assert [e["errorType"] for e in mine["errors"]] == [
            e["errorType"] for e in theirs["errors"]
        ], query
        assert mine["errors"][0]["message"] == theirs["errors"][0]["message"], query


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 - the projections give no event to await
            await asyncio.sleep(0.1)


async def test_a_profile_update_through_eventbridge_reaches_the_customer(stack: Stack) -> None:
    query = """mutation { updateCustomerProfile(input: {customerId: "c-0003",
      name: "Renamed Through AppSync", idempotencyKey: "appsync-profile-1"}) {
      requestId acceptedAt } }"""
    [answer] = await stack.appsync({"query": query})
    assert "errors" not in answer, answer
    receipt = answer["data"]["updateCustomerProfile"]
    assert receipt["requestId"] == profile_update_request_id("c-0003", "appsync-profile-1")

    async def renamed() -> bool:
        found = await stack.hemisphere('query { customer(id: "c-0003") { name } }')
        return bool(found["data"]["customer"]["name"] == "Renamed Through AppSync")

    await _eventually(renamed)


async def test_upsert_product_writes_row_stock_and_outbox_in_one_statement(stack: Stack) -> None:
    create = """mutation { upsertProduct(input: {sku: "APPSYNC-1", name: "Lamp", category: "garden",
      price: {amount: 4200, currency: "EUR"}, available: 7}) {
      id sku name category price { amount currency } available version } }"""
    [created] = await stack.appsync({"query": create})
    assert "errors" not in created, created
    product = created["data"]["upsertProduct"]
    assert product["id"] == "p-0241" and product["version"] == 1 and product["available"] == 7

    # Replacing it by sku with another stock: the version advances twice (row and stock), as
    # the Python repository does it.
    update = create.replace('name: "Lamp"', 'name: "Lamp II"').replace(
        "available: 7", "available: 3"
    )
    [updated] = await stack.appsync({"query": update})
    assert updated["data"]["upsertProduct"]["version"] == 3, updated

    wanted = {**updated["data"]["upsertProduct"]}

    async def projected() -> bool:
        found = await stack.hemisphere(
            """query { product(id: "p-0241") { id sku name category price { amount currency }
            available version } }"""
        )
        return bool(found["data"]["product"] == wanted)

    await _eventually(projected)

    # The same write through Hemisphere's own resolver continues from there.
    through_hemisphere = await stack.hemisphere_iam(update.replace("available: 3", "available: 4"))
    assert through_hemisphere["data"]["upsertProduct"]["version"] == 5, through_hemisphere

    taken = create.replace('sku: "APPSYNC-1"', 'id: "p-0001", sku: "APPSYNC-1"')
    [conflict] = await stack.appsync({"query": taken})
    assert conflict["errors"][0]["errorType"] == "BadRequestException"
    assert "already belongs to product p-0241" in conflict["errors"][0]["message"]


async def test_subscriptions_filter_on_the_arguments_given(stack: Stack) -> None:
    answers = await stack.appsync(
        {"query": 'subscription { onOrderChanged(customerId: "c-0001") { id } }'},
        {"query": "subscription { onProductChanged { id } }"},
        {"query": 'subscription { onProductChanged(id: "p-1", category: "books") { id } }'},
    )
    assert answers[0]["filter"] == {
        "filterGroup": [
            {"filters": [{"fieldName": "customerId", "operator": "eq", "value": "c-0001"}]}
        ]
    }
    assert answers[1]["filter"] is None
    fields = {f["fieldName"]: f["value"] for f in answers[2]["filter"]["filterGroup"][0]["filters"]}
    assert fields == {"id": "p-1", "category": "books"}


CANCEL = """mutation($id: ID!, $key: String!) { cancelOrder(id: $id, idempotencyKey: $key) {
  id status } }"""


async def test_cancel_order_starts_the_cancellation_hemisphere_would_start(stack: Stack) -> None:
    orders = (
        await stack.hemisphere(
            'query { ordersByCustomer(customerId: "c-0001") { items { id status } } }'
        )
    )["data"]["ordersByCustomer"]["items"]
    confirmed = next(o["id"] for o in orders if o["status"] == "CONFIRMED")
    unfinished = [o["id"] for o in orders if o["status"] not in ("CONFIRMED", "CANCELLED")]
    key = "appsync-cancel-1"
    [answer] = await stack.appsync({"query": CANCEL, "variables": {"id": confirmed, "key": key}})
    assert answer["data"]["cancelOrder"] == {"id": confirmed, "status": "CONFIRMED"}, answer

    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=stack.settings.aws_endpoint_url,
        region_name=stack.settings.region,
        aws_access_key_id=LOCAL_KEY,
        aws_secret_access_key=LOCAL_KEY,
    )
    machine = stack.harness.env["CANCEL_STATE_MACHINE_ARN"]
    command = CancelOrder(order_id=confirmed, idempotency_key=key)
    execution = sfn.describe_execution(
        executionArn=machine.replace(":stateMachine:", ":execution:")
        + ":"
        + cancel_execution_name(confirmed, key)
    )
    assert json.loads(execution["input"]) == json.loads(cancel_input(command))
    # Asked again (either front end): the same cancellation, no conflict.
    [again] = await stack.appsync({"query": CANCEL, "variables": {"id": confirmed, "key": key}})
    assert "errors" not in again, again

    for order_id in unfinished[:1]:
        [mine] = await stack.appsync({"query": CANCEL, "variables": {"id": order_id, "key": key}})
        theirs = await stack.hemisphere(CANCEL, {"id": order_id, "key": key})
        assert mine["errors"][0]["errorType"] == theirs["errors"][0]["errorType"]
        assert mine["errors"][0]["message"] == theirs["errors"][0]["message"]


async def test_writes_are_refused_when_the_primary_moved_or_cannot_be_reached(
    stack: Stack,
) -> None:
    # Deployed against eu-west-1 as primary while the control item names us-east-1: a stack
    # not updated after a promotion writes nothing.
    stale = replace(stack.harness, env={**stack.harness.env, "PRIMARY_REGION": "eu-west-1"})
    # A secondary whose primary's Step Functions does not answer.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    unreachable = replace(
        stack.harness,
        env={**stack.harness.env, "REGION": "eu-west-1"},
        step_functions_endpoint=f"http://127.0.0.1:{port}/",
    )
    request = {"query": CHECKOUT, "variables": {"key": "appsync-refused", "quantity": 1}}
    for config in (stale, unreachable):
        [answer] = await stack.appsync(request, config=config)
        assert answer["data"] == {"checkout": None}
        assert answer["errors"][0]["errorType"] == "ReadOnlyRegion", answer
        assert answer["errors"][0]["errorInfo"] == {"retryable": True}
