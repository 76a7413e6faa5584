"""Simulated users of one location: readers, a checkout client and a region probe, each a
loop that records every request it made (hemisphere/drill/records.py) until cancelled.

Reads are what a shop's pages ask: a product, a category's products, a customer and their
orders (demo data: p-0001…p-0240, c-0001…c-0050). Catalog reads carry the API key; a customer
read and a checkout carry that customer's token (hemisphere/drill/tokens.py). Shoppers are the
customers of a small pool (SHOPPERS), so that a subscriber per location can follow every
order they place: a token subscribes to its own customer's orders only. Checkouts use
`tok_visa` and a fresh idempotency key each, so each acknowledged one is a distinct order.
The probe asks `region { … }` every PROBE_INTERVAL_S: which region answered this location,
and whether it is read-only."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import aiohttp

from hemisphere.drill.graphql import execute
from hemisphere.drill.records import Acknowledged, Request
from hemisphere.drill.tokens import CustomerTokens

PRODUCTS = [f"p-{n:04d}" for n in range(1, 241)]
CUSTOMERS = [f"c-{n:04d}" for n in range(1, 51)]
# Who places the drill's orders: one subscription each per location (realtime.py).
SHOPPERS = CUSTOMERS[:8]
CATEGORIES = ("books", "electronics", "garden", "kitchen", "music", "outdoors", "toys", "apparel")
PROBE_INTERVAL_S = 0.25
# Reads in flight per location while every read is made once before the measures.
BROWSE_CONCURRENCY = 4
# How soon a shopper sends a checkout again after an answer that may pass (`retryable`).
RETRY_S = 0.5
RETRYABLE_ERRORS = frozenset(
    {
        "ReadOnlyRegion",
        "ServiceUnavailable",
        "ThrottlingException",
        "TooManyRequestsException",
        "InternalFailure",
        "Timeout",
    }
)

PRODUCT = "query($id: ID!) { product(id: $id) { id name price { amount currency } available } }"
CATEGORY = """query($c: String) { products(category: $c, limit: 20) {
  items { id name price { amount currency } } nextToken } }"""
CUSTOMER = """query($id: ID!) { customer(id: $id) { id name loyaltyPoints }
  ordersByCustomer(customerId: $id, limit: 10) { items { id status total { amount } } } }"""
REGION = "{ region { region primaryRegion readOnly epoch } }"
CHECKOUT = "mutation($input: CheckoutInput!) { checkout(input: $input) { id status } }"


@dataclass(frozen=True, slots=True)
class Target:
    """Where a location's users send their requests, and how they record them."""

    location: str
    url: str
    http: aiohttp.ClientSession
    clock: Callable[[], float]
    requests: list[Request]
    acknowledged: list[Acknowledged]
    tokens: CustomerTokens


def read_request(rng: random.Random) -> tuple[str, dict[str, object], str | None]:
    """One read, in a shop's proportions: mostly products, some categories and accounts; and
    the customer it is made as (None: the catalog, with the API key)."""
    roll = rng.random()
    if roll < 0.6:
        return PRODUCT, {"id": rng.choice(PRODUCTS)}, None
    if roll < 0.8:
        return CATEGORY, {"c": rng.choice(CATEGORIES)}, None
    customer = rng.choice(CUSTOMERS)
    return CUSTOMER, {"id": customer}, customer


def every_read() -> list[tuple[str, dict[str, object], str | None]]:
    """Each read `read_request` can make, once: every product, category and customer."""
    reads: list[tuple[str, dict[str, object], str | None]] = []
    reads += [(PRODUCT, {"id": product}, None) for product in PRODUCTS]
    reads += [(CATEGORY, {"c": category}, None) for category in CATEGORIES]
    reads += [(CUSTOMER, {"id": customer}, customer) for customer in CUSTOMERS]
    return reads


async def browse_everything(target: Target) -> list[Request]:
    """Make every read once through `target` (BROWSE_CONCURRENCY at a time), as a shop's
    visitors have by the time it is measured: the regions' caches hold what is read. The
    requests go to the list returned, not to `target`'s."""
    made: list[Request] = []
    quiet = dataclasses.replace(target, requests=made, acknowledged=[])
    pending = every_read()

    async def browser() -> None:
        while pending:
            query, variables, customer = pending.pop()
            await _send(quiet, "read", query, variables, customer)

    await asyncio.gather(*(browser() for _ in range(BROWSE_CONCURRENCY)))
    return made


async def _send(
    target: Target,
    kind: Literal["read", "checkout", "probe"],
    query: str,
    variables: dict[str, object],
    customer: str | None = None,
) -> tuple[Request, dict[str, object] | None]:
    headers = target.tokens.headers(customer) if customer is not None else None
    started = target.clock()
    answer = await execute(target.http, target.url, query, variables, headers)
    ended = target.clock()
    region = None
    if kind == "probe" and answer.data and isinstance(answer.data.get("region"), dict):
        region = str(answer.data["region"].get("region"))
    request = Request(target.location, kind, started, ended, answer.error, region)
    target.requests.append(request)
    return request, answer.data


async def reader(target: Target, seed: int, think_s: float) -> None:
    rng = random.Random(seed)
    while True:
        query, variables, customer = read_request(rng)
        request, _ = await _send(target, "read", query, variables, customer)
        # A failing region answers at once: back off a little so errors do not spin.
        await asyncio.sleep(think_s if request.ok else max(think_s, 0.1))


async def shopper(target: Target, seed: int, interval_s: float) -> None:
    """A new order every `interval_s`. A checkout that failed for a reason that may pass (the
    region read-only, a backend down, a throttle, no answer) is sent again, with the same
    idempotencyKey, every RETRY_S until it is answered for good, as a client that honours
    "Retry later with the same idempotencyKey" does: the order is placed at most once, and
    the drill sees a region's state change within RETRY_S of it rather than at the next
    order."""
    rng = random.Random(seed)
    while True:
        begun = target.clock()
        customer = rng.choice(SHOPPERS)
        checkout = {
            "customerId": customer,
            "lines": [{"productId": rng.choice(PRODUCTS), "quantity": 1}],
            "paymentToken": "tok_visa",
            "idempotencyKey": f"drill-{uuid.uuid4()}",
        }
        while True:
            request, data = await _send(target, "checkout", CHECKOUT, {"input": checkout}, customer)
            if not retryable(request.error):
                break
            await asyncio.sleep(RETRY_S)
        order = (data or {}).get("checkout")
        if request.ok and isinstance(order, dict) and order.get("id"):
            target.acknowledged.append(
                Acknowledged(str(order["id"]), target.location, request.ended, customer)
            )
        await asyncio.sleep(max(0.0, interval_s - (target.clock() - begun)))


def retryable(error: str | None) -> bool:
    """Whether a checkout that answered `error` may succeed if sent again unchanged: what
    AppSync clients retry (a region that cannot write now, a backend down, a throttle, the
    network or the edge failing: graphql.execute's transport answers), not a refusal of the
    request itself (a validation error, a declined card, an idempotency conflict)."""
    if error is None:
        return False
    if error in RETRYABLE_ERRORS or error.startswith("HTTP 5"):
        return True
    transport = getattr(aiohttp, error, None)  # execute names a transport failure by its class
    return isinstance(transport, type) and issubclass(transport, aiohttp.ClientError)


async def prober(target: Target) -> None:
    while True:
        begun = target.clock()
        await _send(target, "probe", REGION, {})
        await asyncio.sleep(max(0.0, PROBE_INTERVAL_S - (target.clock() - begun)))
