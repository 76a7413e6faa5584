"""Contract version 2 over HTTP and AppSync's real-time protocol: the API key (public, in
every frontend) reads the catalog and the region only; customer data needs an identity, and a
token caller reads, acts on and listens to its own customer only; IAM callers to any;
upsertProduct is IAM or a Cognito user in `admins`. Whatever is refused is refused with
AppSync's error, leaks nothing and writes nothing."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import jwt
import pytest

from hemisphere.app import create_app
from hemisphere.http.realtime_options import RealtimeOptions
from hemisphere.local_issuer import AUDIENCE, LocalIssuer
from tests.functional.test_realtime_appsync import HOST, Api, serving, start, started
from tests.support.app import (
    API_KEY,
    ISSUER,
    ISSUER_URL,
    SETTINGS,
    client_for,
    fake_runtime,
    runtime_factory,
    sigv4_headers,
    token_headers,
)
from tests.support.fakes import (
    FakeWorkflows,
    InMemoryReader,
    make_customer,
    make_order,
    make_products,
)

PRODUCTS = make_products(3)
ADA, BOB = make_customer(1), make_customer(2)
ADAS = make_order(1, ADA, PRODUCTS[0])
BOBS = make_order(2, BOB, PRODUCTS[1])
URL = f"http://{HOST}/graphql"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    reader = InMemoryReader(products=PRODUCTS, customers=[ADA, BOB], orders=[ADAS, BOBS])
    app = create_app(SETTINGS, runtime_factory=runtime_factory(fake_runtime(reader)))
    async with client_for(app) as running:
        yield running


async def ask(
    client: httpx.AsyncClient, query: str, headers: dict[str, str] | None, **variables: Any
) -> httpx.Response:
    body = json.dumps({"query": query, "variables": variables}).encode()
    if headers is None:  # IAM
        headers = sigv4_headers(URL, body)
    return await client.post("/graphql", content=body, headers=headers)


def api_key() -> dict[str, str]:
    return {"x-api-key": API_KEY}


CUSTOMER = "query($id: ID!) { customer(id: $id) { id name email } }"
ORDER = "query($id: ID!) { order(id: $id) { id customerId total { amount } } }"
ORDERS = "query($c: ID!) { ordersByCustomer(customerId: $c) { items { id } } }"


def refused(body: dict[str, Any], field: str, type_name: str = "Query") -> None:
    # ordersByCustomer is non-null: its null takes the whole `data` with it.
    assert body["data"] == (None if field == "ordersByCustomer" else {field: None}), body
    [error] = body["errors"]
    assert error["errorType"] == "Unauthorized"
    assert error["message"] == f"Not Authorized to access {field} on type {type_name}"


async def test_the_api_key_reads_the_catalog_and_the_region_and_no_customer_data(
    client: httpx.AsyncClient,
) -> None:
    public = await ask(client, "{ products { items { id } } region { region } }", api_key())
    assert len(public.json()["data"]["products"]["items"]) == 3
    mixed = await ask(client, '{ region { region } customer(id: "c-0001") { name } }', api_key())
    # One field refused does not fail the rest of the request, and names nothing it holds.
    assert mixed.json()["data"] == {"region": {"region": "us-east-1"}, "customer": None}
    assert "Ada" not in mixed.text
    for query, field, variables in (
        (CUSTOMER, "customer", {"id": ADA.id}),
        (ORDER, "order", {"id": ADAS.id}),
        (ORDERS, "ordersByCustomer", {"c": ADA.id}),
    ):
        refused((await ask(client, query, api_key(), **variables)).json(), field)


async def test_a_token_reads_its_own_customer_and_orders_only(client: httpx.AsyncClient) -> None:
    ada = token_headers(ADA.id)
    own = await ask(client, CUSTOMER, ada, id=ADA.id)
    assert own.json()["data"]["customer"]["name"] == ADA.name
    assert (await ask(client, ORDER, ada, id=ADAS.id)).json()["data"]["order"]["id"] == ADAS.id
    orders = await ask(client, ORDERS, ada, c=ADA.id)
    assert [o["id"] for o in orders.json()["data"]["ordersByCustomer"]["items"]] == [ADAS.id]
    # An order that does not exist is null, for its would-be owner as for anyone.
    assert (await ask(client, ORDER, ada, id="o-nope")).json() == {"data": {"order": None}}
    for query, field, variables in (
        (CUSTOMER, "customer", {"id": BOB.id}),
        (ORDER, "order", {"id": BOBS.id}),
        (ORDERS, "ordersByCustomer", {"c": BOB.id}),
    ):
        answer = await ask(client, query, ada, **variables)
        refused(answer.json(), field)
        assert BOB.name not in answer.text and BOBS.id not in answer.text


async def test_a_token_without_a_customer_reads_no_customer(client: httpx.AsyncClient) -> None:
    now = int(time.time())
    claims = {"iss": ISSUER_URL, "sub": "operator", "aud": AUDIENCE, "iat": now, "exp": now + 60}
    anonymous = {"authorization": _sign(ISSUER, claims)}
    refused((await ask(client, CUSTOMER, anonymous, id=ADA.id)).json(), "customer")


async def test_iam_reads_any_customer(client: httpx.AsyncClient) -> None:
    for customer in (ADA, BOB):
        answer = await ask(client, CUSTOMER, None, id=customer.id)
        assert answer.json()["data"]["customer"]["name"] == customer.name


UPSERT = """mutation($input: ProductInput!) { upsertProduct(input: $input) { id name } }"""
PRODUCT_INPUT = {
    "sku": "SKU-NEW",
    "name": "New lamp",
    "category": "lamps",
    "price": {"amount": 1000, "currency": "USD"},
    "available": 3,
}


@pytest.mark.parametrize(
    ("caller", "allowed"),
    [
        ("iam", True),
        ("cognito admins", True),
        ("cognito, not admins", False),
        ("oidc with an admins claim", False),
        ("api key", False),
    ],
)
async def test_upsert_product_is_iam_or_cognito_admins(
    client: httpx.AsyncClient, caller: str, allowed: bool
) -> None:
    headers = {
        "iam": None,
        "cognito admins": token_headers("c-0001", ["admins"], user_pool=True),
        "cognito, not admins": token_headers("c-0001", ["shoppers"], user_pool=True),
        "oidc with an admins claim": token_headers("c-0001", ["admins"]),
        "api key": api_key(),
    }[caller]
    answer = (await ask(client, UPSERT, headers, input=PRODUCT_INPUT)).json()
    if allowed:
        assert answer["data"]["upsertProduct"]["name"] == "New lamp", answer
    else:
        refused(answer, "upsertProduct", "Mutation")
    listed = await ask(client, "{ products { items { name } } }", api_key())
    names = [p["name"] for p in listed.json()["data"]["products"]["items"]]
    assert ("New lamp" in names) is allowed


def _sign(issuer: LocalIssuer, claims: dict[str, Any], **headers: Any) -> str:
    key = issuer._key  # the issuer's own key: only the claims are wrong
    return jwt.encode(
        claims, key, algorithm="RS256", headers={"kid": issuer.jwks()["keys"][0]["kid"], **headers}
    )


def _unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize("flaw", ["expired", "wrongly signed", "alg none", "another issuer"])
async def test_a_bad_token_for_another_customer_is_a_401_and_writes_nothing(
    client: httpx.AsyncClient, tmp_path: Any, flaw: str
) -> None:
    now = int(time.time())
    claims = {
        "iss": ISSUER_URL,
        "sub": BOB.id,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "custom:customerId": BOB.id,
    }
    if flaw == "expired":
        token = _sign(ISSUER, {**claims, "iat": now - 7200, "exp": now - 3600})
    elif flaw == "wrongly signed":
        token = LocalIssuer(tmp_path, ISSUER_URL).token(BOB.id)  # same issuer name, other key
    elif flaw == "alg none":
        token = _unsigned(claims)
    else:
        token = LocalIssuer(tmp_path, "https://evil.example").token(BOB.id)
    profile = (
        "mutation($i: CustomerProfileInput!) { updateCustomerProfile(input: $i) { requestId } }"
    )
    answer = await ask(
        client,
        profile,
        {"authorization": token},
        i={"customerId": BOB.id, "name": "Mallory", "idempotencyKey": "x-1"},
    )
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["errorType"] == "UnauthorizedException"
    assert "data" not in answer.json()


# --- subscriptions ------------------------------------------------------------------------

ON_ORDER = (
    "subscription($c: ID, $id: ID) { onOrderChanged(customerId: $c, id: $id) { id customerId } }"
)
ON_CUSTOMER = "subscription($id: ID) { onCustomerChanged(id: $id) { id name } }"


def with_token(customer: str) -> dict[str, str]:
    return {"host": HOST, **token_headers(customer)}


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async with serving(RealtimeOptions()) as running:
        yield running


async def refused_at_start(api: Api, message: dict[str, Any], field: str) -> None:
    async with api.socket() as ws:
        await ws.send_json({"type": "connection_init"})
        await ws.receive_json()
        await ws.send_json(message)
        reply = await ws.receive_json()
        assert reply["type"] == "error" and reply["id"] == message["id"], reply
        [error] = reply["payload"]["errors"]
        assert error["errorType"] == "Unauthorized"
        assert error["message"] == f"Not Authorized to access {field} on type Subscription"
    assert api.broker.subscriber_count("publishOrder") == 0
    assert api.broker.subscriber_count("publishCustomer") == 0


@pytest.mark.parametrize(
    ("caller", "variables"),
    [
        ("api key", {"c": "c-1"}),
        ("token", {"c": "c-2"}),  # another customer
        ("token", {}),  # no customer named
    ],
)
async def test_who_may_not_listen_to_orders(
    api: Api, caller: str, variables: dict[str, Any]
) -> None:
    auth = {"host": HOST, "x-api-key": API_KEY} if caller == "api key" else with_token("c-1")
    message = start("o", variables, query=ON_ORDER, auth=auth)
    await refused_at_start(api, message, "onOrderChanged")


async def test_who_may_not_listen_to_a_customer(api: Api) -> None:
    for n, auth in enumerate(({"host": HOST, "x-api-key": API_KEY}, with_token("c-1"))):
        message = start(f"c{n}", {"id": "c-2"}, query=ON_CUSTOMER, auth=auth)
        await refused_at_start(api, message, "onCustomerChanged")


async def test_a_token_listens_to_its_own_orders_by_customer_or_by_order_id(api: Api) -> None:
    async with api.socket() as ws:
        await ws.send_json({"type": "connection_init"})
        await ws.receive_json()
        await started(ws, start("mine", {"c": "c-1"}, query=ON_ORDER, auth=with_token("c-1")))
        # An order id not projected yet (a checkout just answered): only the caller's own
        # order of that id can ever arrive.
        await started(ws, start("one", {"id": "o-0009"}, query=ON_ORDER, auth=with_token("c-1")))
        await api.publish("c-2", order="o-0009")  # someone else's order with that id
        await api.publish("c-1", order="o-0009")
        replies: dict[str, list[Any]] = {}
        for _ in range(2):
            reply = await ws.receive_json()
            replies.setdefault(reply["id"], []).append(reply["payload"]["data"]["onOrderChanged"])
        assert replies == {
            "mine": [{"id": "o-0009", "customerId": "c-1"}],
            "one": [{"id": "o-0009", "customerId": "c-1"}],
        }
        with pytest.raises(TimeoutError):
            await ws.receive_json(within=0.2)


async def test_a_token_for_another_audience_is_a_401_and_writes_nothing() -> None:
    """With a client id configured (HEMISPHERE_OIDC_CLIENT_ID), a token the same issuer made
    for another application is refused like any bad token."""
    reader = InMemoryReader(products=PRODUCTS, customers=[ADA, BOB], orders=[ADAS, BOBS])
    workflows = FakeWorkflows()
    settings = replace(SETTINGS, oidc_client_id=AUDIENCE)
    app = create_app(
        settings, runtime_factory=runtime_factory(fake_runtime(reader, workflows=workflows))
    )
    now = int(time.time())
    claims = {"iss": ISSUER_URL, "sub": BOB.id, "iat": now, "exp": now + 600}
    checkout = {
        "customerId": BOB.id,
        "lines": [{"productId": PRODUCTS[0].id, "quantity": 1}],
        "paymentToken": "tok_visa",
        "idempotencyKey": "aud-1",
    }
    query = "mutation($i: CheckoutInput!) { checkout(input: $i) { id } }"
    async with client_for(app) as client:
        for audience, status in (("another-app", 401), (AUDIENCE, 200)):
            token = _sign(ISSUER, {**claims, "aud": audience, "custom:customerId": BOB.id})
            answer = await ask(client, query, {"authorization": token}, i=checkout)
            assert answer.status_code == status, answer.text
            if status == 401:
                assert answer.json()["errors"][0]["errorType"] == "UnauthorizedException"
                assert workflows.checkouts == {}
    assert len(workflows.checkouts) == 1  # the token for this application placed it
