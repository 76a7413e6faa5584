"""Rate limits at the HTTP edge: a caller over its rate gets HTTP 429 TooManyRequestsException
with a retry hint, and nothing of its request runs; other callers are not affected."""

from __future__ import annotations

import httpx

from hemisphere.app import create_app
from tests.support.app import API_KEY, client_for, fake_runtime, runtime_factory, with_settings
from tests.support.fakes import InMemoryReader, make_products

OTHER_KEY = "da2-anotherkeyanotherkeyanother"


async def test_a_caller_over_its_rate_gets_429_with_a_retry_hint() -> None:
    settings = with_settings(
        api_keys=(API_KEY, OTHER_KEY), rate_limit_per_api_key=(0.5, 2), redis_url=None
    )
    reader = InMemoryReader(products=make_products(3))
    app = create_app(settings, runtime_factory=runtime_factory(fake_runtime(reader)))
    query = {"query": '{ product(id: "p-0001") { id } }'}
    async with client_for(app) as client:

        async def ask(key: str) -> httpx.Response:
            return await client.post("/graphql", json=query, headers={"x-api-key": key})

        assert [(await ask(API_KEY)).status_code for _ in range(2)] == [200, 200]
        refused = await ask(API_KEY)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        [error] = refused.json()["errors"]
        assert error["errorType"] == "TooManyRequestsException"
        assert error["errorInfo"]["retryable"] is True
        assert 0 < error["errorInfo"]["retryAfterSeconds"] <= 2
        assert (await ask(OTHER_KEY)).status_code == 200  # its own allowance


async def test_the_address_limit_applies_before_credentials_are_checked() -> None:
    settings = with_settings(rate_limit_per_address=(0.5, 1), redis_url=None)
    app = create_app(settings, runtime_factory=runtime_factory(fake_runtime(InMemoryReader())))
    async with client_for(app) as client:
        body = {"query": "{ region { region } }"}
        first = await client.post("/graphql", json=body, headers={"x-api-key": "da2-wrong-key"})
        second = await client.post("/graphql", json=body, headers={"x-api-key": API_KEY})
    assert first.status_code == 401
    assert second.status_code == 429
