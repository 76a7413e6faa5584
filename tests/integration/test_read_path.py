"""The read side end to end on real backends: PostgreSQL → outbox → relay → DynamoDB → GraphQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import pytest

from adapters.dynamodb.client import StaticCredentials, create_client
from adapters.dynamodb.table import ensure_table
from adapters.dynamodb.writer import DynamoProjectionWriter
from adapters.postgres.outbox import PostgresOutbox
from adapters.postgres.pool import create_pool
from adapters.postgres.seed import seed_demo_data
from adapters.postgres.snapshots import PostgresSnapshotSource
from hemisphere.app import create_app
from hemisphere.bootstrap import start_runtime
from hemisphere.localstack import MotoServer
from hemisphere.runtime import StartupOptions
from hemisphere.settings import Settings
from projections.projector import Projector
from projections.rebuild import rebuild
from projections.relay import OutboxRelay
from tests.support.app import SETTINGS, client_for, sigv4_headers, token_headers

pytestmark = pytest.mark.integration

LOCAL = StaticCredentials("hemisphere-local", "hemisphere-local")


def settings_for(pg_dsn: str, aws_endpoint: str, table_name: str, payments_url: str) -> Settings:
    return replace(
        SETTINGS,
        payments_url=payments_url,
        database_url=pg_dsn,
        aws_endpoint_url=aws_endpoint,
        aws_access_key_id=LOCAL.access_key_id,
        aws_secret_access_key=LOCAL.secret_access_key,
        table_name=table_name,
    )


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    def factory(s: Settings) -> Any:
        return start_runtime(s, StartupOptions(seed_demo_data=True, rebuild_projections=True))

    async with client_for(create_app(settings, runtime_factory=factory)) as client:
        yield client


async def gql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    # Customer data (contract v2): c-0001 reads its own, with its token.
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=token_headers("c-0001")
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_queries_read_the_projections(
    pg_dsn: str, aws_endpoint: str, table_name: str, payments_url: str
) -> None:
    async with serving(settings_for(pg_dsn, aws_endpoint, table_name, payments_url)) as client:
        body = await gql(
            client,
            """{
            region { region primaryRegion readOnly epoch }
            product(id: "p-0001") { id name category price { amount currency } version }
            customer(id: "c-0001") { id email homeRegion }
            ordersByCustomer(customerId: "c-0001") { items { id customerId createdAt } }
        }""",
        )
        data = body["data"]
        assert data["region"] == {
            "region": "us-east-1",
            "primaryRegion": "us-east-1",
            "readOnly": False,
            "epoch": 1,
        }
        assert data["product"]["id"] == "p-0001" and data["product"]["price"]["currency"] == "USD"
        assert data["customer"]["id"] == "c-0001"
        orders = data["ordersByCustomer"]["items"]
        assert len(orders) >= 3 and all(o["customerId"] == "c-0001" for o in orders)
        created = [o["createdAt"] for o in orders]
        assert created == sorted(created, reverse=True)
        query = "query($id: ID!) { order(id: $id) { id lines { productName } } }"
        first = (await gql(client, query, {"id": orders[0]["id"]}))["data"]["order"]
        assert first["id"] == orders[0]["id"] and first["lines"]


async def test_walking_every_page_returns_every_product_once(
    pg_dsn: str, aws_endpoint: str, table_name: str, payments_url: str
) -> None:
    async with serving(settings_for(pg_dsn, aws_endpoint, table_name, payments_url)) as client:
        seen: list[str] = []
        categories: set[str] = set()
        token = None
        while True:
            page = (
                await gql(
                    client,
                    "query($t: String) { products(limit: 37, nextToken: $t)"
                    " { items { id category } nextToken } }",
                    {"t": token},
                )
            )["data"]["products"]
            seen += [p["id"] for p in page["items"]]
            categories |= {p["category"] for p in page["items"]}
            token = page["nextToken"]
            if token is None:
                break
        assert len(seen) == len(set(seen)) >= 200
        assert seen == sorted(seen)
        by_category: list[str] = []
        for category in sorted(categories):
            token = None
            while True:
                page = (
                    await gql(
                        client,
                        "query($c: String, $t: String) { products(category: $c,"
                        " nextToken: $t) { items { id category } nextToken } }",
                        {"c": category, "t": token},
                    )
                )["data"]["products"]
                assert {p["category"] for p in page["items"]} <= {category}
                by_category += [p["id"] for p in page["items"]]
                token = page["nextToken"]
                if token is None:
                    break
        assert sorted(by_category) == seen and len(categories) >= 4


async def test_a_write_reaches_the_projection_within_a_second(
    pg_dsn: str, aws_endpoint: str, table_name: str, payments_url: str
) -> None:
    async with serving(settings_for(pg_dsn, aws_endpoint, table_name, payments_url)) as client:
        before = await gql(client, '{ product(id: "p-0007") { sku name version } }')
        product = before["data"]["product"]
        body = json.dumps(
            {
                "query": """mutation($sku: String!) { upsertProduct(input: {
            id: "p-0007", sku: $sku, name: "Renamed", category: "books",
            price: {amount: 999, currency: "USD"}, available: 5}) { id name version } }""",
                "variables": {"sku": product["sku"]},
            }
        ).encode()
        response = await client.post(
            "/graphql", content=body, headers=sigv4_headers("http://testserver/graphql", body)
        )
        written = response.json()["data"]["upsertProduct"]
        assert written["name"] == "Renamed" and written["version"] > product["version"]

        started = time.monotonic()
        while True:
            seen = await gql(client, '{ product(id: "p-0007") { name version available } }')
            if seen["data"]["product"]["version"] == written["version"]:
                break
            assert time.monotonic() - started < 1.0, "the projection did not follow in 1 s"
            await asyncio.sleep(0.02)
        assert seen["data"]["product"] == {
            "name": "Renamed",
            "version": written["version"],
            "available": 5,
        }


async def test_bad_product_input_is_a_bad_request_and_writes_nothing(
    pg_dsn: str, aws_endpoint: str, table_name: str, payments_url: str
) -> None:
    async with serving(settings_for(pg_dsn, aws_endpoint, table_name, payments_url)) as client:
        body = json.dumps(
            {
                "query": """mutation { upsertProduct(input: {sku: "X-1", name: "X",
            category: "books", price: {amount: 5, currency: "dollars"}, available: 1})
            { id } }"""
            }
        ).encode()
        response = await client.post(
            "/graphql", content=body, headers=sigv4_headers("http://testserver/graphql", body)
        )
        error = response.json()["errors"][0]
        assert error["errorType"] == "BadRequestException" and "currency" in error["message"]
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM products WHERE sku = 'X-1'") == 0
    finally:
        await conn.close()


async def test_rebuild_equals_the_incrementally_built_table(pg_dsn: str, aws_endpoint: str) -> None:
    pool = await create_pool(pg_dsn)
    outbox = PostgresOutbox(pool, pg_dsn)
    try:
        assert await seed_demo_data(pool)
        async with create_client(aws_endpoint, "us-east-1", LOCAL) as client:
            incremental, rebuilt = (f"hemisphere-eq-{i}-{time.monotonic_ns()}" for i in "ab")
            for table in (incremental, rebuilt):
                await ensure_table(client, table)
            incremental_writer = DynamoProjectionWriter(client, incremental)
            assert await OutboxRelay(outbox, Projector(incremental_writer)).drain_all() > 0
            rebuilt_writer = DynamoProjectionWriter(client, rebuilt)
            assert await rebuild(PostgresSnapshotSource(pool), rebuilt_writer) > 0
            a = [item async for item in incremental_writer.scan_all()]
            b = [item async for item in rebuilt_writer.scan_all()]

            def key(item: dict[str, Any]) -> str:
                return str(item["pk"])

            assert len(a) >= 310 and sorted(a, key=key) == sorted(b, key=key)
    finally:
        await outbox.aclose()
        await pool.close()


async def test_a_down_projection_store_is_a_named_error_not_a_hang(
    pg_dsn: str, table_name: str, payments_url: str
) -> None:
    moto = MotoServer()
    moto.start()
    try:
        async with serving(settings_for(pg_dsn, moto.url, table_name, payments_url)) as client:
            assert (await gql(client, '{ product(id: "p-0001") { id } }'))["data"]["product"]
            moto.stop()
            started = time.monotonic()
            body = await gql(client, '{ product(id: "p-0002") { id } }')
            assert time.monotonic() - started < 10
            [error] = body["errors"]
            assert error["errorType"] == "ServiceUnavailable"
            assert "retry" in error["message"] and error["path"] == ["product"]
            assert error["errorInfo"] == {"retryable": True}
    finally:
        moto.stop()
