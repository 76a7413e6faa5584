"""AWS_LAMBDA over HTTP, through the app, with a real authorizer on a port of its own
(tests/support/lambda_authorizer.py): its answers decide who calls, its cache and
ttlOverride how often it is asked, its deniedFields which fields resolve to null."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import jwt
import pytest

from hemisphere.app import create_app
from hemisphere.localstack import free_port
from tests.support.app import (
    API_KEY,
    client_for,
    fake_runtime,
    runtime_factory,
    token_headers,
    with_settings,
)
from tests.support.fakes import FakeProfileUpdates, InMemoryReader, make_customer, make_products
from tests.support.lambda_authorizer import CRASH, GARBAGE, StandIn, running_authorizer

ADA = {"isAuthorized": True, "resolverContext": {"customerId": "c-0001", "plan": "gold"}}
QUERY_ARN = "arn:aws:appsync:us-east-1:123456789012:apis/hemisphere/types/Query/fields/customer"
ANSWERS: dict[str, Any] = {
    "ada": ADA,
    "nobody": {"isAuthorized": False},
    "cached": {"isAuthorized": True},
    "every-time": {"isAuthorized": True, "ttlOverride": 0},
    "no-description": {**ADA, "deniedFields": ["Product.description", QUERY_ARN]},
    "no-profile": {**ADA, "deniedFields": ["Mutation.updateCustomerProfile"]},
    "crash": CRASH,
    "garbage": GARBAGE,
}
READ = """query Read($p: ID!, $c: ID!) {
  product(id: $p) { id name description }
  customer(id: $c) { id }
}"""
PROFILE = """mutation { updateCustomerProfile(input: {customerId: "c-0001", name: "Ada L.",
  idempotencyKey: "k-1"}) { requestId } }"""


@pytest.fixture(scope="module")
def authorizer() -> Iterator[StandIn]:
    with running_authorizer(ANSWERS) as stand_in:
        yield stand_in


class Api:
    def __init__(self, http: httpx.AsyncClient, profiles: FakeProfileUpdates) -> None:
        self.http = http
        self.profiles = profiles

    async def ask(self, token: str, query: str = READ, **variables: Any) -> httpx.Response:
        body = {"query": query, "variables": variables or {"p": "p-0001", "c": "c-0001"}}
        return await self.http.post("/graphql", json=body, headers={"authorization": token})


async def serving(url: str, **settings: Any) -> AsyncIterator[Api]:
    products = [replace(p, description="A lamp") for p in make_products(2)]
    reader = InMemoryReader(products=products, customers=[make_customer(1), make_customer(2)])
    profiles = FakeProfileUpdates()
    app = create_app(
        with_settings(lambda_authorizer_url=url, **settings),
        runtime_factory=runtime_factory(fake_runtime(reader, profiles=profiles)),
    )
    async with client_for(app) as http:
        yield Api(http, profiles)


@pytest.fixture
async def api(authorizer: StandIn) -> AsyncIterator[Api]:
    async for running in serving(authorizer.url, lambda_authorizer_ttl_seconds=300):
        yield running


def refusal(response: httpx.Response) -> tuple[int, str, str]:
    [error] = response.json()["errors"]
    return response.status_code, error["errorType"], error["message"]


async def test_the_authorizer_decides_and_its_context_names_the_customer(
    api: Api, authorizer: StandIn
) -> None:
    mine = await api.ask("ada")
    assert mine.status_code == 200
    data = mine.json()["data"]
    assert data["product"] == {"id": "p-0001", "name": "Product 1", "description": "A lamp"}
    assert data["customer"] == {"id": "c-0001"}
    # resolverContext.customerId is the caller's customer: another's is refused.
    theirs = (await api.ask("ada", p="p-0001", c="c-0002")).json()
    assert theirs["data"]["customer"] is None
    assert theirs["errors"][0]["errorType"] == "Unauthorized"
    request = next(r for r in authorizer.requests if r["authorizationToken"] == "ada")
    assert request["requestContext"]["queryString"] == READ
    assert request["requestContext"]["operationName"] is None
    assert request["requestContext"]["variables"] == {"p": "p-0001", "c": "c-0001"}
    assert request["requestHeaders"]["authorization"] == "ada"


async def test_is_authorized_false_is_a_401(api: Api) -> None:
    assert refusal(await api.ask("nobody")) == (
        401,
        "UnauthorizedException",
        "You are not authorized to make this call.",
    )


async def test_an_authorizer_that_is_down_is_a_named_error_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = f"http://127.0.0.1:{free_port()}/authorize"
    async for api in serving(down):
        began = time.monotonic()
        with caplog.at_level(logging.WARNING):
            response = await api.ask("ada")
        assert time.monotonic() - began < 2
    assert refusal(response) == (401, "UnauthorizedException", "The Lambda authorizer failed.")
    assert "LambdaAuthorizerError" in caplog.text and "ConnectError" in caplog.text
    assert "127.0.0.1" not in response.text  # where the authorizer lives is not the client's


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("crash", "The Lambda authorizer failed."),
        ("garbage", "The Lambda authorizer's response is malformed."),
    ],
)
async def test_a_failing_authorizer_is_a_named_error(api: Api, token: str, message: str) -> None:
    assert refusal(await api.ask(token)) == (401, "UnauthorizedException", message)


async def test_a_cached_answer_does_not_call_the_authorizer_again(
    api: Api, authorizer: StandIn
) -> None:
    for _ in range(3):
        assert (await api.ask("cached", "{ region { region } }")).status_code == 200
    assert authorizer.calls("cached") == 1


async def test_ttl_override_zero_calls_it_every_time(api: Api, authorizer: StandIn) -> None:
    for _ in range(3):
        assert (await api.ask("every-time", "{ region { region } }")).status_code == 200
    assert authorizer.calls("every-time") == 3


async def test_denied_fields_resolve_to_null_with_an_error_the_rest_intact(api: Api) -> None:
    body = (await api.ask("no-description")).json()
    assert body["data"] == {
        "product": {"id": "p-0001", "name": "Product 1", "description": None},
        "customer": None,
    }
    errors = {(e["errorType"], e["message"], tuple(e["path"])) for e in body["errors"]}
    assert errors == {
        (
            "Unauthorized",
            "Not Authorized to access description on type Product",
            ("product", "description"),
        ),
        ("Unauthorized", "Not Authorized to access customer on type Query", ("customer",)),
    }
    # Through a fragment, too.
    fragment = (
        await api.ask(
            "no-description",
            'query { product(id: "p-0002") { ...P } } fragment P on Product { id description }',
        )
    ).json()
    assert fragment["data"] == {"product": {"id": "p-0002", "description": None}}


async def test_a_denied_mutation_does_not_run(api: Api) -> None:
    denied = (await api.ask("no-profile", PROFILE)).json()
    assert denied["data"] == {"updateCustomerProfile": None}
    assert denied["errors"][0]["message"] == (
        "Not Authorized to access updateCustomerProfile on type Mutation"
    )
    assert api.profiles.submitted == []
    allowed = (await api.ask("ada", PROFILE)).json()
    assert allowed["data"]["updateCustomerProfile"]["requestId"]
    assert [c.customer_id for c in api.profiles.submitted] == ["c-0001"]


async def test_which_mode_a_request_is(api: Api, authorizer: StandIn) -> None:
    # A JWT of the configured issuer stays OIDC: the authorizer never sees it.
    token = token_headers("c-0001")["authorization"]
    response = await api.http.post(
        "/graphql",
        json={"query": '{ customer(id: "c-0001") { id } }'},
        headers={"authorization": token},
    )
    assert response.json()["data"] == {"customer": {"id": "c-0001"}}
    assert authorizer.calls(token) == 0
    # A JWT of any other issuer is the Lambda authorizer's to judge.
    foreign = jwt.encode({"iss": "https://elsewhere.example", "sub": "x"}, "k" * 32)
    assert (await api.ask(foreign, "{ region { region } }")).status_code == 401
    assert authorizer.calls(foreign) == 1
    # No Authorization at all: the API key.
    keyed = await api.http.post(
        "/graphql",
        content=json.dumps({"query": "{ region { region } }"}),
        headers={"x-api-key": API_KEY},
    )
    assert keyed.status_code == 200
