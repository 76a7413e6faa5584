"""The exported APPSYNC_JS resolvers, executed in Node against the backends a running
Hemisphere uses (its moto DynamoDB with the demo data, Step Functions, EventBridge, its
PostgreSQL), answer as Hemisphere answers: the README's read queries, pagination included;
checkout starting the very execution Hemisphere starts; profile updates and catalog writes
reaching the projections; contract v2's ownership rule (a token caller reads and acts on its
own customer only, IAM on any, the API key on none), refused before anything is written."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
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
from tests.support.app import API_KEY, SETTINGS, client_for, sigv4_headers, token_headers
from tests.support.appsync_harness import (
    API_KEY_CALLER,
    IAM_CALLER,
    HarnessConfig,
    Identity,
    cognito_caller,
    export_to,
    lambda_caller,
    oidc_caller,
    require_node,
    run_harness,
)
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

OWNER = "c-0001"
OTHER = "c-0002"


@dataclass(frozen=True)
class Caller:
    """One caller as both front ends see it: AppSync's identity for the harness, and the
    headers of the same caller to Hemisphere (None: a mode the test Hemisphere does not take)."""

    appsync: Identity
    headers: Callable[[bytes], dict[str, str]] | None


IAM = Caller(IAM_CALLER, lambda body: sigv4_headers("http://testserver/graphql", body))
PUBLIC = Caller(API_KEY_CALLER, lambda body: {"x-api-key": API_KEY})


def oidc(customer_id: str) -> Caller:
    """An OPENID_CONNECT caller; the test Hemisphere's claim is `sub`, as the harness's env."""
    return Caller(oidc_caller({"sub": customer_id}), lambda body: token_headers(customer_id))


def user_pool(customer_id: str, groups: Sequence[str] = ()) -> Caller:
    return Caller(
        cognito_caller(customer_id, tuple(groups)),
        lambda body: token_headers(customer_id, groups, user_pool=True),
    )


def authorizer(resolver_context: dict[str, str]) -> Caller:
    return Caller(lambda_caller(resolver_context), None)


@dataclass
class Stack:
    client: httpx.AsyncClient
    settings: Settings
    node: str
    export_dir: Path
    harness: HarnessConfig

    async def hemisphere(
        self, query: str, variables: dict[str, Any] | None = None, *, as_: Caller
    ) -> Any:
        assert as_.headers is not None, "the test Hemisphere does not take this mode"
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        response = await self.client.post(
            "/graphql",
            content=body,
            headers={"content-type": "application/json", **as_.headers(body)},
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def hemisphere_pages(self, query: str, field: str, *, as_: Caller) -> list[Any]:
        pages, token = [], None
        while True:
            answer = await self.hemisphere(query, {"token": token}, as_=as_)
            pages.append(answer)
            token = answer["data"][field]["nextToken"]
            if token is None:
                return pages

    async def appsync(
        self, *requests: dict[str, Any], as_: Caller, config: HarnessConfig | None = None
    ) -> list[Any]:
        """The harness's answers; each request from `as_` unless it names its own "auth"."""
        sent = [{"auth": as_.appsync.as_json(), **request} for request in requests]
        # The harness is a blocking child process: keep the event loop (and so the workers
        # of the Hemisphere under test) running meanwhile.
        return await asyncio.to_thread(
            run_harness, self.node, self.export_dir, config or self.harness, sent
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
                    "OIDC_CUSTOMER_CLAIM": settings.oidc_customer_claim,
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
    for caller in (IAM, oidc(OWNER)):
        expected = [await stack.hemisphere(query, as_=caller) for query in single]
        answers = await stack.appsync(*({"query": query} for query in single), as_=caller)
        for mine, theirs in zip(answers, expected, strict=True):
            assert mine == theirs, json.dumps([mine, theirs])
        assert answers[0]["data"]["product"]["id"] == "p-0001"
        assert answers[1]["data"] == {"product": None, "customer": None}
        assert answers[3]["data"]["customer"]["id"] == OWNER
        # IAM reads any customer (c-9999: none); a token is refused another one, existing
        # or not.
        refused = [(e["path"], e["errorType"]) for a in answers for e in a.get("errors", [])]
        assert refused == ([] if caller is IAM else [(["customer"], "Unauthorized")])


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
    owner = oidc(OWNER)
    answers = await stack.appsync(*requests, as_=owner)
    for request, mine in zip(requests, answers, strict=True):
        if "paginate" in request:
            theirs = await stack.hemisphere_pages(request["query"], "products", as_=owner)
            assert len(mine) == len(theirs) > 1, request["query"]
        else:
            mine, theirs = [mine], [await stack.hemisphere(request["query"], as_=owner)]
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
    owner = oidc(OWNER)
    answers = await stack.appsync(
        *({"query": q, "paginate": field} for q, field in lists), as_=owner
    )
    for (query, field), mine in zip(lists, answers, strict=True):
        theirs = await stack.hemisphere_pages(query, field, as_=owner)
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
    [mine] = await stack.appsync({"query": BAD_LIMIT}, as_=PUBLIC)
    theirs = await stack.hemisphere(BAD_LIMIT, as_=PUBLIC)
    assert mine["errors"][0]["errorType"] == theirs["errors"][0]["errorType"]
    assert mine["errors"][0]["errorType"] == "BadRequestException"


CHECKOUT = """mutation($key: String!, $quantity: Int!) {
  checkout(input: {customerId: "c-0002", paymentToken: "tok_visa", idempotencyKey: $key,
                   lines: [{productId: "p-0003", quantity: $quantity}]}) {
    id status customerId customerName total { amount currency } lines { productId quantity }
  } }"""


async def test_checkout_starts_the_execution_hemisphere_would_start(stack: Stack) -> None:
    key = "appsync-harness-1"
    customer = oidc(OTHER)  # the customer CHECKOUT names
    [started] = await stack.appsync(
        {"query": CHECKOUT, "variables": {"key": key, "quantity": 2}}, as_=customer
    )
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
    again = await stack.hemisphere(CHECKOUT, {"key": key, "quantity": 2}, as_=customer)
    assert "errors" not in again and again["data"]["checkout"]["id"] == order_id
    [conflict] = await stack.appsync(
        {"query": CHECKOUT, "variables": {"key": key, "quantity": 3}}, as_=customer
    )
    theirs = await stack.hemisphere(CHECKOUT, {"key": key, "quantity": 3}, as_=customer)
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
    # IAM: any customer, so that the checks after ownership are the ones compared.
    answers = await stack.appsync(*({"query": q} for q in queries), as_=IAM)
    for query, mine in zip(queries, answers, strict=True):
        theirs = await stack.hemisphere(query, as_=IAM)
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
    [answer] = await stack.appsync({"query": query}, as_=user_pool("c-0003"))
    assert "errors" not in answer, answer
    receipt = answer["data"]["updateCustomerProfile"]
    assert receipt["requestId"] == profile_update_request_id("c-0003", "appsync-profile-1")

    async def renamed() -> bool:
        found = await stack.hemisphere('query { customer(id: "c-0003") { name } }', as_=IAM)
        return bool(found["data"]["customer"]["name"] == "Renamed Through AppSync")

    await _eventually(renamed)


async def test_upsert_product_writes_row_stock_and_outbox_in_one_statement(stack: Stack) -> None:
    create = """mutation { upsertProduct(input: {sku: "APPSYNC-1", name: "Lamp", category: "garden",
      price: {amount: 4200, currency: "EUR"}, available: 7}) {
      id sku name category price { amount currency } available version } }"""
    [created] = await stack.appsync({"query": create}, as_=IAM)
    assert "errors" not in created, created
    product = created["data"]["upsertProduct"]
    assert product["id"] == "p-0241" and product["version"] == 1 and product["available"] == 7

    # Replacing it by sku with another stock: the version advances twice (row and stock), as
    # the Python repository does it.
    update = create.replace('name: "Lamp"', 'name: "Lamp II"').replace(
        "available: 7", "available: 3"
    )
    [updated] = await stack.appsync({"query": update}, as_=IAM)
    assert updated["data"]["upsertProduct"]["version"] == 3, updated

    wanted = {**updated["data"]["upsertProduct"]}

    async def projected() -> bool:
        found = await stack.hemisphere(
            """query { product(id: "p-0241") { id sku name category price { amount currency }
            available version } }""",
            as_=PUBLIC,
        )
        return bool(found["data"]["product"] == wanted)

    await _eventually(projected)

    # The same write through Hemisphere's own resolver continues from there.
    through_hemisphere = await stack.hemisphere(
        update.replace("available: 3", "available: 4"), as_=IAM
    )
    assert through_hemisphere["data"]["upsertProduct"]["version"] == 5, through_hemisphere

    taken = create.replace('sku: "APPSYNC-1"', 'id: "p-0001", sku: "APPSYNC-1"')
    [conflict] = await stack.appsync({"query": taken}, as_=IAM)
    assert conflict["errors"][0]["errorType"] == "BadRequestException"
    assert "already belongs to product p-0241" in conflict["errors"][0]["message"]


async def test_subscriptions_filter_on_the_arguments_given(stack: Stack) -> None:
    answers = await stack.appsync(
        {
            "query": 'subscription { onOrderChanged(customerId: "c-0001") { id } }',
            "auth": IAM_CALLER.as_json(),
        },
        {"query": "subscription { onProductChanged { id } }"},
        {"query": 'subscription { onProductChanged(id: "p-1", category: "books") { id } }'},
        as_=PUBLIC,
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
    owner = oidc(OWNER)
    orders = (
        await stack.hemisphere(
            'query { ordersByCustomer(customerId: "c-0001") { items { id status } } }', as_=owner
        )
    )["data"]["ordersByCustomer"]["items"]
    confirmed = next(o["id"] for o in orders if o["status"] == "CONFIRMED")
    unfinished = [o["id"] for o in orders if o["status"] not in ("CONFIRMED", "CANCELLED")]
    key = "appsync-cancel-1"
    [answer] = await stack.appsync(
        {"query": CANCEL, "variables": {"id": confirmed, "key": key}}, as_=owner
    )
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
    [again] = await stack.appsync(
        {"query": CANCEL, "variables": {"id": confirmed, "key": key}}, as_=owner
    )
    assert "errors" not in again, again

    for order_id in unfinished[:1]:
        [mine] = await stack.appsync(
            {"query": CANCEL, "variables": {"id": order_id, "key": key}}, as_=owner
        )
        theirs = await stack.hemisphere(CANCEL, {"id": order_id, "key": key}, as_=owner)
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
        [answer] = await stack.appsync(request, as_=oidc(OTHER), config=config)
        assert answer["data"] == {"checkout": None}
        assert answer["errors"][0]["errorType"] == "ReadOnlyRegion", answer
        assert answer["errors"][0]["errorInfo"] == {"retryable": True}


# -- Contract v2: ownership -----------------------------------------------------------------

# One field a query: a refused ordersByCustomer (non-null) nulls the whole answer, and the
# errors of fields still running then are not reported (graphql-js and graphql-core alike).
READS = {
    "customer": "query($customer: ID!) { customer(id: $customer) { id } }",
    "order": "query($order: ID!) { order(id: $order) { id customerId } }",
    "ordersByCustomer": """query($customer: ID!) {
      ordersByCustomer(customerId: $customer, limit: 1) { items { customerId } } }""",
}
EVERYTHING = frozenset(READS)


def _reads(variables: dict[str, str]) -> list[dict[str, Any]]:
    return [{"query": query, "variables": variables} for query in READS.values()]


async def _order_of(stack: Stack, customer_id: str) -> str:
    query = "query($c: ID!) { ordersByCustomer(customerId: $c) { items { id } } }"
    found = await stack.hemisphere(query, {"c": customer_id}, as_=IAM)
    return str(found["data"]["ordersByCustomer"]["items"][0]["id"])


def _errors(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(".".join(map(str, e["path"])), e["errorType"]) for e in answer.get("errors", [])]


def _refused(answers: list[Any]) -> frozenset[str]:
    """The fields of READS that were refused, each alone and as AppSync refuses."""
    refused = set()
    for field, answer in zip(READS, answers, strict=True):
        if "errors" in answer:
            assert _errors(answer) == [(field, "Unauthorized")], answer
            assert (
                answer["errors"][0]["message"] == f"Not Authorized to access {field} on type Query"
            )
            refused.add(field)
    return frozenset(refused)


async def test_a_token_caller_reads_its_own_customer_only_as_hemisphere_does(
    stack: Stack,
) -> None:
    own_order, other_order = await _order_of(stack, OWNER), await _order_of(stack, OTHER)
    own, missing_order = {"customer": OWNER, "order": own_order}, {"order": "o-missing"}
    other = {"customer": OTHER, "order": other_order}
    for caller, refused_other in (
        (oidc(OWNER), EVERYTHING),
        (user_pool(OWNER), EVERYTHING),
        (IAM, frozenset()),
    ):
        for variables, refused in ((own, frozenset()), (other, refused_other)):
            answers = await stack.appsync(*_reads(variables), as_=caller)
            assert _refused(answers) == refused, (caller.appsync.auth_type, variables)
            for request, mine in zip(_reads(variables), answers, strict=True):
                theirs = await stack.hemisphere(request["query"], variables, as_=caller)
                assert mine == theirs, json.dumps([caller.appsync.auth_type, mine, theirs])
        # No such order: null, whoever asks (nothing says whose it would be).
        [missing] = await stack.appsync(
            {"query": READS["order"], "variables": missing_order}, as_=caller
        )
        assert missing == {"data": {"order": None}}
    # The API key reads no customer data at all, its own or not.
    for variables in (own, other):
        answers = await stack.appsync(*_reads(variables), as_=PUBLIC)
        assert _refused(answers) == EVERYTHING
        for request, mine in zip(_reads(variables), answers, strict=True):
            assert mine == await stack.hemisphere(request["query"], variables, as_=PUBLIC)
    answers = await stack.appsync(*_reads(own), as_=oidc(OWNER))
    assert [a["data"] for a in answers] == [
        {"customer": {"id": OWNER}},
        {"order": {"id": own_order, "customerId": OWNER}},
        {"ordersByCustomer": {"items": [{"customerId": OWNER}]}},
    ]


async def test_each_token_mode_finds_the_customer_where_appsync_puts_it(stack: Stack) -> None:
    variables = {"customer": OWNER, "order": await _order_of(stack, OWNER)}
    cases = [
        # Lambda: the authorizer's resolverContext.customerId.
        (lambda_caller({"customerId": OWNER, "groups": ""}), frozenset()),
        (lambda_caller({"customerId": OTHER}), EVERYTHING),
        (lambda_caller({}), EVERYTHING),
        # Cognito: custom:customerId, not sub.
        (cognito_caller(OWNER), frozenset()),
        (cognito_caller(None), EVERYTHING),
        # OIDC: the configured claim (sub in this deployment), nothing else.
        (oidc_caller({"sub": OWNER}), frozenset()),
        (oidc_caller({"sub": "user-7", "custom:customerId": OWNER}), EVERYTHING),
    ]
    for identity, refused in cases:
        answers = await stack.appsync(*_reads(variables), as_=Caller(identity, None))
        assert _refused(answers) == refused, json.dumps([identity.as_json(), answers])

    # Another deployment's claim (the regional stack's OidcCustomerClaim); none configured:
    # no OIDC caller is anyone's.
    env = stack.harness.env
    other_claim = replace(stack.harness, env={**env, "OIDC_CUSTOMER_CLAIM": "customer_id"})
    unconfigured = replace(
        stack.harness, env={k: v for k, v in env.items() if k != "OIDC_CUSTOMER_CLAIM"}
    )
    token = Caller(oidc_caller({"sub": "user-7", "customer_id": OWNER}), None)
    by_claim = await stack.appsync(*_reads(variables), as_=token, config=other_claim)
    assert _refused(by_claim) == frozenset()
    assert by_claim[0]["data"] == {"customer": {"id": OWNER}}
    by_sub = await stack.appsync(*_reads(variables), as_=oidc(OWNER), config=unconfigured)
    assert _refused(by_sub) == EVERYTHING


PROFILE = """mutation($customer: ID!, $key: String!) { updateCustomerProfile(input: {
  customerId: $customer, name: "Taken Over", idempotencyKey: $key}) { requestId } }"""


def _execution_exists(stack: Stack, machine: str, name: str) -> bool:
    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=stack.settings.aws_endpoint_url,
        region_name=stack.settings.region,
        aws_access_key_id=LOCAL_KEY,
        aws_secret_access_key=LOCAL_KEY,
    )
    try:
        sfn.describe_execution(
            executionArn=machine.replace(":stateMachine:", ":execution:") + ":" + name
        )
    except sfn.exceptions.ExecutionDoesNotExist:
        return False
    return True


async def test_a_mutation_for_another_customer_is_refused_before_anything_runs(
    stack: Stack,
) -> None:
    # Whatever its state: whose it is comes first.
    their_order = await _order_of(stack, OTHER)
    key = "appsync-not-yours"
    requests: list[tuple[str, dict[str, Any], list[dict[str, str]]]] = [
        (CHECKOUT, {"key": key, "quantity": 1}, []),
        # Invalid besides (quantity 101): refused as not the caller's before its shape is
        # looked at, as Hemisphere does.
        (CHECKOUT, {"key": key, "quantity": 101}, []),
        (PROFILE, {"customer": OTHER, "key": key}, []),
        # The order must be read to know whose it is: that read, nothing after it.
        (
            CANCEL,
            {"id": their_order, "key": key},
            [{"dataSource": "Projections", "action": "BatchGetItem"}],
        ),
    ]
    for caller in (oidc(OWNER), user_pool(OWNER), authorizer({"customerId": OWNER}), PUBLIC):
        answers = await stack.appsync(
            *({"query": q, "variables": v, "trace": True} for q, v, _ in requests), as_=caller
        )
        for (query, variables, reached), mine in zip(requests, answers, strict=True):
            field = next(iter(mine["data"]))
            assert mine["data"] == {field: None}, mine
            assert _errors(mine) == [(field, "Unauthorized")], mine
            assert (
                mine["errors"][0]["message"] == f"Not Authorized to access {field} on type Mutation"
            )
            assert mine["dataSources"] == reached, (caller.appsync.auth_type, mine)
            if caller.headers is not None:
                theirs = await stack.hemisphere(query, variables, as_=caller)
                assert {k: v for k, v in mine.items() if k != "dataSources"} == theirs
    env = stack.harness.env
    assert not _execution_exists(
        stack, env["CHECKOUT_STATE_MACHINE_ARN"], checkout_execution_name(order_id_for(OTHER, key))
    )
    assert not _execution_exists(
        stack, env["CANCEL_STATE_MACHINE_ARN"], cancel_execution_name(their_order, key)
    )
    # The same request from IAM (any customer) reaches its data sources.
    [profile] = await stack.appsync(
        {"query": PROFILE, "variables": {"customer": OTHER, "key": key}, "trace": True},
        as_=IAM,
    )
    assert "errors" not in profile, profile
    assert [c["action"] for c in profile["dataSources"]] == ["GetItem", "PutEvents"]


def _filter(answer: dict[str, Any]) -> dict[str, Any] | None:
    """A subscription's enhanced filter as {field: value} (all of them `eq`), None if none."""
    assert "errors" not in answer, answer
    if answer["filter"] is None:
        return None
    [group] = answer["filter"]["filterGroup"]
    assert {f["operator"] for f in group["filters"]} == {"eq"}
    return {f["fieldName"]: f["value"] for f in group["filters"]}


def _subscription(field: str, arguments: str, caller: Identity) -> dict[str, Any]:
    selection = f"{field}({arguments})" if arguments else field
    return {"query": f"subscription {{ {selection} {{ id }} }}", "auth": caller.as_json()}


async def test_subscriptions_deliver_a_token_caller_its_own_customer_only(stack: Stack) -> None:
    own = [oidc_caller({"sub": OWNER}), cognito_caller(OWNER), lambda_caller({"customerId": OWNER})]
    allowed: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    refused: list[dict[str, Any]] = []
    for token in own:
        allowed += [
            (
                _subscription("onOrderChanged", f'customerId: "{OWNER}"', token),
                {"customerId": OWNER},
            ),
            # An order id: whoever's it is, only the caller's own customer's can be delivered.
            (
                _subscription("onOrderChanged", 'id: "o-1"', token),
                {"id": "o-1", "customerId": OWNER},
            ),
            (
                _subscription("onOrderChanged", f'id: "o-1", customerId: "{OWNER}"', token),
                {"id": "o-1", "customerId": OWNER},
            ),
            (_subscription("onCustomerChanged", f'id: "{OWNER}"', token), {"id": OWNER}),
            (_subscription("onProductChanged", "", token), None),
        ]
        refused += [
            _subscription("onOrderChanged", f'customerId: "{OTHER}"', token),
            _subscription("onOrderChanged", f'id: "o-1", customerId: "{OTHER}"', token),
            _subscription("onOrderChanged", "", token),
            _subscription("onCustomerChanged", f'id: "{OTHER}"', token),
            _subscription("onCustomerChanged", "", token),
        ]
    for nobody in (API_KEY_CALLER, cognito_caller(None), lambda_caller({})):
        refused += [
            _subscription("onOrderChanged", f'customerId: "{OWNER}"', nobody),
            _subscription("onOrderChanged", 'id: "o-1"', nobody),
            _subscription("onCustomerChanged", f'id: "{OWNER}"', nobody),
        ]
    allowed += [
        # IAM listens as it asks: to one customer, any, or all.
        (_subscription("onOrderChanged", "", IAM_CALLER), None),
        (
            _subscription("onOrderChanged", f'customerId: "{OTHER}"', IAM_CALLER),
            {"customerId": OTHER},
        ),
        (_subscription("onCustomerChanged", "", IAM_CALLER), None),
        (_subscription("onCustomerChanged", f'id: "{OTHER}"', IAM_CALLER), {"id": OTHER}),
        # The catalog is public.
        (
            _subscription("onProductChanged", 'category: "books"', API_KEY_CALLER),
            {"category": "books"},
        ),
    ]
    answers = await stack.appsync(*(r for r, _ in allowed), *refused, as_=PUBLIC)
    for (request, wanted), answer in zip(allowed, answers, strict=False):
        assert _filter(answer) == wanted, json.dumps([request, answer])
    for request, answer in zip(refused, answers[len(allowed) :], strict=True):
        field = request["query"].split()[2].split("(")[0]
        assert answer == {
            "errors": [
                {
                    "message": f"Not Authorized to access {field} on type Subscription",
                    "errorType": "Unauthorized",
                    "errorInfo": None,
                    "data": None,
                }
            ]
        }, json.dumps([request, answer])
