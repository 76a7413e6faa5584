"""The GraphQL HTTP API over fake projections: auth, errors, pagination, batching."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from hemisphere.app import create_app
from tests.support.app import (
    API_KEY,
    IAM_AKID,
    IAM_SECRET,
    SETTINGS,
    client_for,
    fake_runtime,
    runtime_factory,
    sigv4_headers,
    token_headers,
)
from tests.support.fakes import InMemoryReader, make_customer, make_order, make_products

PRODUCTS = make_products(45)
CUSTOMER = make_customer(1)
ORDERS = [make_order(i, CUSTOMER, PRODUCTS[0]) for i in range(1, 8)]


@pytest.fixture
def reader() -> InMemoryReader:
    return InMemoryReader(products=PRODUCTS, customers=[CUSTOMER], orders=ORDERS)


@pytest.fixture
async def client(reader: InMemoryReader) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        SETTINGS,
        runtime_factory=runtime_factory(fake_runtime(reader)),
        graphiql_api_key=API_KEY,
        graphiql_customer="c-0001",
    )
    async with client_for(app) as c:
        yield c


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"x-api-key": API_KEY} if headers is None else headers,
    )


def assert_appsync_error(error: dict[str, Any], error_type: str) -> None:
    assert error["errorType"] == error_type, error
    assert {"message", "errorType", "path", "locations"} <= error.keys()
    assert error["message"]


async def test_product_by_id(client: httpx.AsyncClient) -> None:
    response = await gql(
        client, '{ product(id: "p-0002") { id name price { amount currency } updatedAt version } }'
    )
    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "product": {
                "id": "p-0002",
                "name": "Product 2",
                "price": {"amount": 200, "currency": "USD"},
                "updatedAt": "2026-01-01T00:00:00.000Z",
                "version": 1,
            }
        }
    }


async def test_unknown_product_is_null(client: httpx.AsyncClient) -> None:
    response = await gql(client, '{ product(id: "p-9999") { id } }')
    assert response.json() == {"data": {"product": None}}


async def test_aliases_are_batched_into_one_read(
    client: httpx.AsyncClient, reader: InMemoryReader
) -> None:
    query = "{ " + " ".join(f'a{i}: product(id: "p-{i:04d}") {{ id }}' for i in range(1, 11))
    query += ' again: product(id: "p-0001") { name } }'
    response = await gql(client, query)
    data = response.json()["data"]
    assert [data[f"a{i}"]["id"] for i in range(1, 11)] == [f"p-{i:04d}" for i in range(1, 11)]
    batches = [args for name, args in reader.calls if name == "products_by_id"]
    assert len(batches) == 1 and sorted(batches[0]) == [f"p-{i:04d}" for i in range(1, 11)]


async def test_missing_and_wrong_api_key_are_401(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"x-api-key": "da2-wrongwrongwrongwrongwrongwr"}):
        response = await gql(client, "{ region { region } }", headers=headers)
        assert response.status_code == 401
        [error] = response.json()["errors"]
        assert error["errorType"] == "UnauthorizedException"


async def test_malformed_json_and_empty_body_are_400(client: httpx.AsyncClient) -> None:
    for body in (b"{not json", b"", b"[]", b'{"variables": {}}'):
        response = await client.post(
            "/graphql",
            content=body,
            headers={"x-api-key": API_KEY, "content-type": "application/json"},
        )
        assert response.status_code == 400, body
        assert response.json()["errors"][0]["errorType"] == "MalformedHttpRequestException"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"query": "query A { region { region } }", "operationName": "B"},
            "Unknown operation named 'B'",
        ),
        (
            {"query": "query A { region { region } } query B { region { epoch } }"},
            "Must provide operation name",
        ),
        ({"query": "{ region { region } } { region { epoch } }"}, "Must provide operation name"),
    ],
)
async def test_an_operation_that_cannot_be_selected_is_a_bad_request(
    client: httpx.AsyncClient, body: dict[str, str], message: str
) -> None:
    """The spec's GetOperation, instead of an HTTP 500 or silently running the first one."""
    response = await client.post(
        "/graphql", json=body, headers={"x-api-key": API_KEY, "content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["errorType"] == "BadRequestException" and message in error["message"]


async def test_the_named_operation_of_several_runs(client: httpx.AsyncClient) -> None:
    body = {
        "query": "query A { region { region } } query B { region { primaryRegion } }",
        "operationName": "B",
    }
    response = await client.post("/graphql", json=body, headers={"x-api-key": API_KEY})
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"region": {"primaryRegion": "us-east-1"}}


async def test_api_key_caller_of_iam_field_is_refused_that_field(
    client: httpx.AsyncClient, reader: InMemoryReader
) -> None:
    mutation = """mutation { upsertProduct(input: {sku: "S", name: "N", category: "books",
        price: {amount: 100, currency: "USD"}, available: 1}) { id } }"""
    response = await gql(client, mutation)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"upsertProduct": None}
    [error] = body["errors"]
    assert_appsync_error(error, "Unauthorized")
    assert error["message"] == "Not Authorized to access upsertProduct on type Mutation"
    assert error["path"] == ["upsertProduct"]
    assert len(reader.products) == len(PRODUCTS)  # nothing written


async def test_iam_signed_caller_may_upsert(
    client: httpx.AsyncClient, reader: InMemoryReader
) -> None:
    body = json.dumps(
        {
            "query": """mutation { upsertProduct(input: {sku: "S-1", name: "Lamp",
        category: "garden", price: {amount: 1999, currency: "USD"}, available: 3})
        { id name version } }"""
        }
    ).encode()
    url = "http://testserver/graphql"
    response = await client.post("/graphql", content=body, headers=sigv4_headers(url, body))
    assert response.status_code == 200, response.text
    product = response.json()["data"]["upsertProduct"]
    assert product["name"] == "Lamp" and product["version"] == 1
    assert product["id"] in reader.products


async def test_tampered_or_unknown_signature_is_401(client: httpx.AsyncClient) -> None:
    body = b'{"query": "{ region { region } }"}'
    url = "http://testserver/graphql"
    headers = sigv4_headers(url, body)
    response = await client.post(
        "/graphql", content=body.replace(b"region }", b"epoch }"), headers=headers
    )
    assert response.status_code == 401
    assert "signature" in response.json()["errors"][0]["message"]
    response = await client.post(
        "/graphql", content=body, headers=sigv4_headers(url, body, secret="not-the-secret")
    )
    assert response.status_code == 401


async def test_a_captured_signed_request_cannot_carry_another_body(
    client: httpx.AsyncClient, reader: InMemoryReader
) -> None:
    """A signature over `{ region }` with its payload hash in x-amz-content-sha256 (as the
    AWS SDKs send it) must not authorize an upsertProduct sent with the same headers."""
    query = b'{"query": "{ region { region } }"}'
    url = "http://testserver/graphql"
    mutation = json.dumps(
        {
            "query": """mutation { upsertProduct(input: {sku: "S-9", name: "Forged",
        category: "garden", price: {amount: 1, currency: "USD"}, available: 1}) { id } }"""
        }
    ).encode()
    for claimed in (hashlib.sha256(query).hexdigest(), "UNSIGNED-PAYLOAD"):
        request = AWSRequest(
            method="POST",
            url=url,
            data=query,
            headers={"content-type": "application/json", "x-amz-content-sha256": claimed},
        )
        SigV4Auth(Credentials(IAM_AKID, IAM_SECRET), "appsync", "us-east-1").add_auth(request)
        response = await client.post("/graphql", content=mutation, headers=dict(request.headers))
        assert response.status_code == 401, response.text
    assert len(reader.products) == len(PRODUCTS)  # nothing written


async def test_signatures_for_another_region_or_service_are_401(client: httpx.AsyncClient) -> None:
    body = b'{"query": "{ region { region } }"}'
    url = "http://testserver/graphql"
    response = await client.post(
        "/graphql", content=body, headers=sigv4_headers(url, body, region="eu-west-1")
    )
    assert response.status_code == 401
    request = AWSRequest(
        method="POST", url=url, data=body, headers={"content-type": "application/json"}
    )
    SigV4Auth(Credentials(IAM_AKID, IAM_SECRET), "execute-api", "us-east-1").add_auth(request)
    response = await client.post("/graphql", content=body, headers=dict(request.headers))
    assert response.status_code == 401


async def test_iam_caller_reads_queries(client: httpx.AsyncClient) -> None:
    body = b'{"query": "{ product(id: \\"p-0001\\") { id } }"}'
    response = await client.post(
        "/graphql", content=body, headers=sigv4_headers("http://testserver/graphql", body)
    )
    assert response.json() == {"data": {"product": {"id": "p-0001"}}}


async def walk(client: httpx.AsyncClient, field: str, args: str, limit: int | None) -> list[str]:
    ids: list[str] = []
    token: str | None = None
    limit_arg = f", limit: {limit}" if limit is not None else ""
    while True:
        query = (
            f"query($t: String) {{ {field}({args}{limit_arg}, nextToken: $t)"
            " { items { id } nextToken } }"
        )
        # Orders are customer data (contract v2): their owner reads them, with a token.
        headers = token_headers("c-0001") if field == "ordersByCustomer" else None
        page = (await gql(client, query, {"t": token}, headers=headers)).json()["data"][field]
        ids += [item["id"] for item in page["items"]]
        token = page["nextToken"]
        if token is None:
            return ids


async def test_walking_pages_returns_every_item_once(client: httpx.AsyncClient) -> None:
    all_ids = await walk(client, "products", 'category: "books"', 4)
    assert all_ids == sorted(p.id for p in PRODUCTS if p.category == "books")
    assert await walk(client, "products", "", None) == [p.id for p in PRODUCTS]
    orders = await walk(client, "ordersByCustomer", 'customerId: "c-0001"', 3)
    assert orders == [o.id for o in reversed(ORDERS)]


async def test_limit_defaults_to_20_and_is_capped_at_100(
    client: httpx.AsyncClient, reader: InMemoryReader
) -> None:
    page = (await gql(client, "{ products { items { id } } }")).json()["data"]["products"]
    assert len(page["items"]) == 20
    await gql(client, "{ products(limit: 1000) { items { id } } }")
    assert reader.calls[-1] == ("products_page", (None, 100, None))


async def test_bad_limit_and_tokens_are_bad_requests(client: httpx.AsyncClient) -> None:
    first = await gql(client, '{ products(category: "books", limit: 2) { nextToken } }')
    token = first.json()["data"]["products"]["nextToken"]
    cases = [
        ("{ products(limit: 0) { nextToken } }", None),
        ("query($t: String) { products(nextToken: $t) { nextToken } }", {"t": "garbage"}),
        (
            'query($t: String) { products(category: "books", nextToken: $t) { nextToken } }',
            {"t": token[:-2] + ("AA" if not token.endswith("AA") else "BB")},
        ),
        # A token of one query is no good for another.
        (
            'query($t: String) { products(category: "music", nextToken: $t) { nextToken } }',
            {"t": token},
        ),
    ]
    for query, variables in cases:
        body = (await gql(client, query, variables)).json()
        assert body["data"] is None, body
        assert_appsync_error(body["errors"][0], "BadRequestException")


async def test_invalid_scalars_are_validation_errors(client: httpx.AsyncClient) -> None:
    body = json.dumps(
        {
            "query": """mutation($e: AWSEmail!) { publishCustomer(input: {
        id: "c-1", name: "N", email: $e, homeRegion: "us-east-1", loyaltyPoints: 0,
        updatedAt: "2026-01-01T00:00:00Z", version: 1}) { id } }""",
            "variables": {"e": "not-an-email"},
        }
    ).encode()
    response = await client.post(
        "/graphql", content=body, headers=sigv4_headers("http://testserver/graphql", body)
    )
    [error] = response.json()["errors"]
    assert_appsync_error(error, "ValidationError")
    assert "AWSEmail" in error["message"]

    literal = """mutation { publishProduct(input: {id: "p-1", sku: "s", name: "n",
        category: "c", price: {amount: 1, currency: "USD"}, available: 1,
        updatedAt: "yesterday", version: 1}) { id } }"""
    body = json.dumps({"query": literal}).encode()
    response = await client.post(
        "/graphql", content=body, headers=sigv4_headers("http://testserver/graphql", body)
    )
    [error] = response.json()["errors"]
    assert_appsync_error(error, "ValidationError")
    assert "AWSDateTime" in error["message"]


async def test_unknown_field_and_syntax_errors(client: httpx.AsyncClient) -> None:
    [error] = (await gql(client, "{ nope }")).json()["errors"]
    assert_appsync_error(error, "ValidationError")
    assert error["locations"] == [{"line": 1, "column": 3, "sourceName": None}]
    [error] = (await gql(client, "{ product(id: ")).json()["errors"]
    assert_appsync_error(error, "InvalidSyntax")


async def test_region_falls_back_to_configuration(client: httpx.AsyncClient) -> None:
    data = (await gql(client, "{ region { region primaryRegion readOnly epoch } }")).json()
    assert data == {
        "data": {
            "region": {
                "region": "us-east-1",
                "primaryRegion": "us-east-1",
                "readOnly": False,
                "epoch": 0,
            }
        }
    }


class Refusing:
    """A WriteStatus whose writes would be refused now (regions.write_availability)."""

    def read_only_reason(self) -> str | None:
        return "cannot reach the primary region us-east-1 (connection refused)"


async def test_region_is_read_only_while_its_writes_would_be_refused(
    reader: InMemoryReader,
) -> None:
    runtime = fake_runtime(reader)
    runtime = replace(runtime, ports=replace(runtime.ports, writes=Refusing()))
    app = create_app(SETTINGS, runtime_factory=runtime_factory(runtime))
    async with client_for(app) as client:
        data = (await gql(client, "{ region { region readOnly } }")).json()
    assert data == {"data": {"region": {"region": "us-east-1", "readOnly": True}}}


async def test_graphiql_for_browsers(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower() and API_KEY in response.text
    assert "unpkg.com" not in response.text  # every asset is served by us: works offline
    for asset in ("graphiql.min.js", "react.production.min.js", "graphiql.min.css"):
        static = await client.get(f"/graphiql/static/{asset}")
        assert static.status_code == 200 and len(static.content) > 1000
    response = await client.get("/graphql", headers={"accept": "application/json"})
    assert response.status_code == 405


async def test_graphiql_opens_with_a_fresh_token_of_the_demo_customer(
    client: httpx.AsyncClient,
) -> None:
    """The headers editor holds the key and a token of c-0001: the example's customer data
    reads at once (contract v2), and the token is made when the page loads, never stale."""
    tokens = []
    for _ in range(2):
        page = (await client.get("/graphql", headers={"accept": "text/html"})).text
        found = re.search(r'Authorization\\": \\"([A-Za-z0-9_.-]+)\\"', page)
        assert found is not None, "no token in the headers editor"
        tokens.append(found.group(1))
    assert tokens[0] != tokens[1]
    headers = {"x-api-key": API_KEY, "authorization": tokens[1]}
    answer = await gql(client, '{ customer(id: "c-0001") { id } }', headers=headers)
    assert answer.json() == {"data": {"customer": {"id": "c-0001"}}}
