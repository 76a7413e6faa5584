"""The read cache behind POST /graphql: whole answers and items are served without reading the
store, every stream publication makes them fresh, a caller never gets an answer made for
another scope, and what changed while an answer was computed is never kept."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from domain.auth import AuthMode, Caller, read_scope
from domain.codec import customer_to_plain, product_to_plain
from domain.model import Product
from hemisphere.app import create_app
from hemisphere.runtime import Runtime
from projections.cached_reader import CachedProjectionReader
from projections.change_feed import ChangeFeed
from projections.read_cache import ReadCache
from subscriptions.inprocess import InProcessBroker
from subscriptions.ports import STREAM_KEY
from tests.support.app import (
    API_KEY,
    SETTINGS,
    client_for,
    fake_runtime,
    runtime_factory,
    sigv4_headers,
    token_headers,
)
from tests.support.fakes import InMemoryReader, make_customer, make_order, make_products

PRODUCT = '{ product(id: "p-0001") { id name available } }'
PRODUCTS = "{ products(limit: 5) { items { id name } nextToken } }"
CUSTOMER = '{ customer(id: "c-0001") { id name loyaltyPoints } }'
KEY = {"x-api-key": API_KEY}


class GatedReader(InMemoryReader):
    """A store whose product reads can be held open, to change things mid-read."""

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def products_by_id(self, ids: Sequence[str]) -> Mapping[str, Product]:
        found = await super().products_by_id(ids)
        if self.gate is not None:
            self.entered.set()
            await self.gate.wait()
        return found


@dataclass
class Served:
    client: httpx.AsyncClient
    store: GatedReader
    broker: InProcessBroker
    cache: ReadCache
    feed: ChangeFeed

    async def query(self, document: str, headers: Mapping[str, str] = KEY) -> dict[str, Any]:
        response = await self.client.post("/graphql", json={"query": document}, headers=headers)
        body: dict[str, Any] = response.json()
        return body

    def reads(self) -> int:
        return len(self.store.calls)

    async def publish(self, channel: str, plain: dict[str, Any]) -> None:
        """What the region's change-stream publisher sends for a change of the table."""
        await self.broker.publish(channel, {**plain, STREAM_KEY: True})
        await asyncio.sleep(0)  # the feed's pump runs
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[Served]:
    customer = make_customer(1)
    products = make_products(10)
    store = GatedReader(
        products=products,
        customers=[customer, make_customer(2)],
        orders=[make_order(1, customer, products[0])],
    )
    broker = InProcessBroker()
    feed = ChangeFeed(broker)
    cache = ReadCache(feed.liveness)
    fake = fake_runtime(store, broker)
    runtime: Runtime = replace(
        fake,
        ports=replace(fake.ports, reader=CachedProjectionReader(store, cache)),
        read_cache=cache,
    )
    app = create_app(SETTINGS, runtime_factory=runtime_factory(runtime))
    task = asyncio.create_task(feed.run(cache))
    try:
        for _ in range(100):  # the feed subscribes on its first steps
            if feed.liveness() is not None:
                break
            await asyncio.sleep(0)
        assert feed.liveness() is not None
        async with client_for(app) as client:
            yield Served(client, store, broker, cache, feed)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_same_request_is_answered_from_the_cache() -> None:
    async with serving() as s:
        first = await s.query(PRODUCT)
        reads = s.reads()
        assert await s.query(PRODUCT) == first
        assert await s.query(PRODUCTS) == await s.query(PRODUCTS)
        assert s.reads() == reads + 1  # the list once; the product not again


async def test_a_change_reaches_the_next_read_without_reading_the_store() -> None:
    async with serving() as s:
        await s.query(PRODUCT)
        await s.query(PRODUCTS)
        reads = s.reads()
        old = s.store.products["p-0001"]
        new = replace(old, name="Renamed", available=0, version=old.version + 1)
        await s.publish("publishProduct", product_to_plain(new))
        answer = await s.query(PRODUCT)
        assert answer["data"]["product"] == {"id": "p-0001", "name": "Renamed", "available": 0}
        assert s.reads() == reads  # the item came with the change
        # The list that held it was invalidated: read again (the fake store still says the
        # old name: a list is re-read, never patched).
        await s.query(PRODUCTS)
        assert s.reads() == reads + 1


async def test_never_an_older_version_over_a_newer_one() -> None:
    async with serving() as s:
        # The store (an eventually consistent replica) still has v1; the stream said v2.
        old = s.store.products["p-0001"]
        new = replace(old, name="Newer", version=old.version + 1)
        await s.publish("publishProduct", product_to_plain(new))
        for _ in range(3):
            answer = await s.query(PRODUCT)
            assert answer["data"]["product"]["name"] == "Newer"


async def test_an_answer_computed_while_its_item_changed_is_not_kept() -> None:
    async with serving() as s:
        s.store.gate = asyncio.Event()
        pending = asyncio.create_task(s.query(PRODUCT))
        await s.store.entered.wait()  # the read of v1 is under way ...
        old = s.store.products["p-0001"]
        new = replace(old, name="Changed mid-read", version=old.version + 1)
        await s.publish("publishProduct", product_to_plain(new))  # ... v2 arrives ...
        s.store.gate.set()
        stale = await pending  # ... the read answers v1 (as DynamoDB would have)
        assert stale["data"]["product"]["name"] == old.name
        s.store.gate = None
        answer = await s.query(PRODUCT)
        assert answer["data"]["product"]["name"] == "Changed mid-read"


async def test_an_answer_is_only_for_callers_of_the_same_scope() -> None:
    async with serving() as s:
        mine = await s.query(CUSTOMER, token_headers("c-0001"))
        assert mine["data"]["customer"]["id"] == "c-0001"
        # The same body from another customer's token, from an API key: refused, not served.
        theirs = await s.query(CUSTOMER, token_headers("c-0002"))
        assert theirs["data"]["customer"] is None
        assert theirs["errors"][0]["errorType"] == "Unauthorized"
        public = await s.query(CUSTOMER)
        assert public["errors"][0]["errorType"] == "Unauthorized"
        assert await s.query(CUSTOMER, token_headers("c-0001")) == mine
        # An IAM caller may read any customer; its answer is its own entry.
        body = json.dumps({"query": CUSTOMER}).encode()
        signed = sigv4_headers("http://testserver/graphql", body)
        response = await s.client.post("/graphql", content=body, headers=signed)
        assert response.json() == mine


async def test_customer_changes_reach_the_owner() -> None:
    async with serving() as s:
        await s.query(CUSTOMER, token_headers("c-0001"))
        changed = replace(s.store.customers["c-0001"], loyalty_points=999, version=9)
        await s.publish("publishCustomer", customer_to_plain(changed))
        answer = await s.query(CUSTOMER, token_headers("c-0001"))
        assert answer["data"]["customer"]["loyaltyPoints"] == 999


async def test_errors_mutations_and_the_region_are_never_kept() -> None:
    async with serving() as s:
        await s.query("{ region { region epoch } }")  # read strongly consistent, each time
        await s.query('{ product(id: "p-0001") { nope } }')
        await s.query('{ customer(id: "c-0001") { id } }')  # Unauthorized for an API key
        upsert = (
            'mutation { upsertProduct(input: {id: "p-0001", sku: "S", name: "N", '
            'category: "books", price: {amount: 1, currency: "USD"}, available: 1}) { id } }'
        )
        body = json.dumps({"query": upsert}).encode()
        signed = sigv4_headers("http://testserver/graphql", body)
        await s.client.post("/graphql", content=body, headers=signed)
        assert s.cache.stats().entries == 0


async def test_without_a_listening_feed_every_request_reads_the_store() -> None:
    async with serving() as s:
        await s.query(PRODUCT)
        s.feed._listening = None  # the feed stopped hearing the stream
        reads = s.reads()
        await s.query(PRODUCT)
        await s.query(PRODUCT)
        assert s.reads() == reads + 2


@pytest.mark.parametrize(
    "other",
    [
        Caller(AuthMode.OPENID_CONNECT, "sub-2", customer_id="c-2"),
        Caller(AuthMode.AMAZON_COGNITO_USER_POOLS, "sub-1", customer_id="c-1", groups=("admins",)),
        Caller(
            AuthMode.AWS_LAMBDA, "l", customer_id="c-1", denied_fields=frozenset({"Customer.email"})
        ),
        Caller(AuthMode.API_KEY, "key"),
        Caller(AuthMode.AWS_IAM, "AKIA"),
    ],
)
def test_the_scope_tells_apart_what_an_answer_depends_on(other: Caller) -> None:
    base = Caller(AuthMode.OPENID_CONNECT, "sub-1", customer_id="c-1")
    assert read_scope(other) != read_scope(base)


def test_the_scope_ignores_who_within_a_public_mode() -> None:
    assert read_scope(Caller(AuthMode.API_KEY, "key-1")) == read_scope(
        Caller(AuthMode.API_KEY, "key-2")
    )
    assert read_scope(Caller(AuthMode.AWS_IAM, "AKIA1")) == read_scope(
        Caller(AuthMode.AWS_IAM, "AKIA2")
    )
