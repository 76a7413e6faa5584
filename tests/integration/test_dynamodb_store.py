"""The projection table on the local AWS endpoint: layout, conditional writes, reads."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from adapters.dynamodb.client import StaticCredentials, create_client
from adapters.dynamodb.reader import DynamoProjectionReader
from adapters.dynamodb.table import delete_table, ensure_table
from adapters.dynamodb.writer import DynamoProjectionWriter, WriteCounts
from domain.errors import BadRequestError
from domain.events import CustomerChanged, Event, OrderChanged, ProductChanged
from domain.model import RegionControl
from tests.support.builders import T0, customer, order, product

pytestmark = pytest.mark.integration

LOCAL = StaticCredentials("hemisphere-local", "hemisphere-local")


@pytest.fixture(scope="module")
async def client(aws_endpoint: str) -> AsyncIterator[Any]:
    async with create_client(aws_endpoint, "us-east-1", LOCAL) as dynamodb:
        yield dynamodb


@pytest.fixture
async def table(client: Any, table_name: str) -> AsyncIterator[str]:
    await ensure_table(client, table_name)
    yield table_name
    await delete_table(client, table_name)


@pytest.fixture
def writer(client: Any, table: str) -> DynamoProjectionWriter:
    return DynamoProjectionWriter(client, table)


@pytest.fixture
def reader(client: Any, table: str) -> DynamoProjectionReader:
    return DynamoProjectionReader(client, table)


# --- table ----------------------------------------------------------------------------------


async def test_ensure_table_is_idempotent_and_creates_the_layout(
    client: Any, table_name: str
) -> None:
    await ensure_table(client, table_name)
    try:
        await ensure_table(client, table_name)

        table = (await client.describe_table(TableName=table_name))["Table"]
        assert table["TableStatus"] == "ACTIVE"
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {
            "pk": "HASH",
            "sk": "RANGE",
        }
        indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
        assert set(indexes) == {"gsi1", "gsi2"}
        for name in ("gsi1", "gsi2"):
            assert [k["AttributeName"] for k in indexes[name]["KeySchema"]] == [
                f"{name}pk",
                f"{name}sk",
            ]
            assert indexes[name]["Projection"]["ProjectionType"] == "ALL"
        assert table["StreamSpecification"] == {
            "StreamEnabled": True,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
    finally:
        await delete_table(client, table_name)
    await delete_table(client, table_name)  # absent: nothing to do


# --- conditional writes ---------------------------------------------------------------------


async def test_an_older_version_never_replaces_a_newer_one(
    writer: DynamoProjectionWriter, reader: DynamoProjectionReader
) -> None:
    v1, v2 = order("o-1", version=1), order("o-1", version=2)

    assert await writer.write([OrderChanged(v2)]) == WriteCounts(1, 0, (OrderChanged(v2),))
    assert await writer.write([OrderChanged(v1)]) == WriteCounts(written=0, skipped=1)
    assert await reader.orders_by_id(["o-1"]) == {"o-1": v2}


async def test_replaying_a_batch_is_harmless(
    writer: DynamoProjectionWriter, reader: DynamoProjectionReader
) -> None:
    batch: list[Event] = [ProductChanged(product("p-1", version=3)), CustomerChanged(customer())]

    assert len(await writer.apply(batch)) == 2
    assert len(await writer.apply(batch)) == 0
    assert await reader.products_by_id(["p-1"]) == {"p-1": product("p-1", version=3)}


async def test_a_newer_version_replaces_the_item_and_its_index_entries(
    writer: DynamoProjectionWriter, reader: DynamoProjectionReader
) -> None:
    await writer.apply([ProductChanged(product("p-1", category="books", version=1))])
    await writer.apply([ProductChanged(product("p-1", category="garden", version=2))])

    assert (await reader.products_page("books", 10, None)).items == []
    assert [p.version for p in (await reader.products_page("garden", 10, None)).items] == [2]


async def test_only_the_newest_version_in_a_batch_is_written(
    writer: DynamoProjectionWriter, reader: DynamoProjectionReader
) -> None:
    versions = [order("o-1", version=v) for v in (2, 5, 1, 4, 3)]

    counts = await writer.write([OrderChanged(o) for o in versions])

    assert counts == WriteCounts(written=1, skipped=4, events=(OrderChanged(versions[1]),))
    assert (await reader.orders_by_id(["o-1"]))["o-1"].version == 5


async def test_concurrent_batches_converge_on_the_newest(
    writer: DynamoProjectionWriter, reader: DynamoProjectionReader
) -> None:
    batches = [[OrderChanged(order(f"o-{i}", version=v)) for i in range(20)] for v in range(1, 6)]
    random.Random(7).shuffle(batches)

    await asyncio.gather(*(writer.apply(b) for b in batches))

    found = await reader.orders_by_id([f"o-{i}" for i in range(20)])
    assert {o.version for o in found.values()} == {5}


async def test_region_control_epoch_never_goes_back_nor_changes_hands_within_one(
    writer: DynamoProjectionWriter, reader: DynamoProjectionReader
) -> None:
    assert await reader.region_control() is None

    assert await writer.put_region_control(RegionControl("us-east-1", epoch=2))
    assert not await writer.put_region_control(RegionControl("eu-west-1", epoch=1))
    assert await reader.region_control() == RegionControl("us-east-1", epoch=2)

    assert await writer.put_region_control(RegionControl("us-east-1", epoch=2, read_only=True))
    assert await reader.region_control() == RegionControl("us-east-1", epoch=2, read_only=True)
    # Another region claiming the same epoch: a split brain, refused.
    assert not await writer.put_region_control(RegionControl("eu-west-1", epoch=2))

    assert await writer.put_region_control(RegionControl("eu-west-1", epoch=3))
    assert await reader.region_control() == RegionControl("eu-west-1", epoch=3)


async def test_start_up_creates_the_region_control_once(
    writer: DynamoProjectionWriter, reader: DynamoProjectionReader
) -> None:
    assert await writer.init_region_control(RegionControl("us-east-1", epoch=1))
    assert await writer.put_region_control(RegionControl("us-east-1", epoch=1, read_only=True))
    # A restart of the old primary must not undo the read-only switch (nor a promotion).
    assert not await writer.init_region_control(RegionControl("us-east-1", epoch=1))
    assert await reader.region_control() == RegionControl("us-east-1", epoch=1, read_only=True)


# --- reads ----------------------------------------------------------------------------------


async def test_products_page_walks_a_category_and_all_products_in_id_order(
    writer: DynamoProjectionWriter, reader: DynamoProjectionReader
) -> None:
    categories = ["books", "garden", "toys"]
    products = [product(f"p-{i:03}", category=categories[i % 3]) for i in range(47)]
    shuffled = products[:]
    random.Random(1).shuffle(shuffled)
    await writer.apply([ProductChanged(p) for p in shuffled])
    await writer.apply([CustomerChanged(customer()), OrderChanged(order())])  # not products

    for category in [*categories, None]:
        expected = [p for p in products if category in (None, p.category)]
        for limit in (1, 7, len(expected), 100):
            walked, pages = await _walk_products(reader, category, limit)
            assert walked == expected, (category, limit)
            assert pages <= len(expected) // limit + 1


async def _walk_products(
    reader: DynamoProjectionReader, category: str | None, limit: int
) -> tuple[list[Any], int]:
    walked: list[Any] = []
    cursor = None
    pages = 0
    while True:
        page = await reader.products_page(category, limit, cursor)
        pages += 1
        assert len(page.items) <= limit
        walked.extend(page.items)
        if page.cursor is None:
            return walked, pages
        assert all(isinstance(v, str) for v in page.cursor.values())
        cursor = dict(page.cursor)


async def test_an_unknown_category_is_an_empty_page(reader: DynamoProjectionReader) -> None:
    page = await reader.products_page("nothing-here", 10, None)

    assert page.items == [] and page.cursor is None


async def test_orders_of_a_customer_newest_first(
    writer: DynamoProjectionWriter, reader: DynamoProjectionReader
) -> None:
    mine = [
        order(f"o-{i:02}", customer_id="c-1", created_at=T0 + timedelta(minutes=(i * 37) % 11))
        for i in range(11)
    ]
    same_moment = [order(f"o-s{i}", customer_id="c-1", created_at=T0) for i in range(2)]
    theirs = [order(f"o-x{i}", customer_id="c-2") for i in range(3)]
    await writer.apply([OrderChanged(o) for o in [*mine, *same_moment, *theirs]])

    walked: list[Any] = []
    cursor = None
    while True:
        page = await reader.orders_page_by_customer("c-1", 4, cursor)
        walked.extend(page.items)
        if page.cursor is None:
            break
        cursor = dict(page.cursor)

    expected = sorted([*mine, *same_moment], key=lambda o: (o.created_at, o.id), reverse=True)
    assert walked == expected


async def test_a_cursor_of_another_list_is_a_bad_request(
    writer: DynamoProjectionWriter, reader: DynamoProjectionReader
) -> None:
    await writer.apply([ProductChanged(product(f"p-{i}", category="books")) for i in range(3)])
    page = await reader.products_page("books", 1, None)
    assert page.cursor is not None

    with pytest.raises(BadRequestError):
        await reader.products_page("garden", 1, dict(page.cursor))
    with pytest.raises(BadRequestError):
        await reader.products_page(None, 1, dict(page.cursor))
    with pytest.raises(BadRequestError):
        await reader.orders_page_by_customer("c-1", 1, dict(page.cursor))
    with pytest.raises(BadRequestError):
        await reader.products_page("books", 1, {**page.cursor, "pk": 5})
    with pytest.raises(BadRequestError):
        await reader.products_page("books", 0, None)


async def test_batch_get_of_many_ids_with_duplicates_and_missing_ones(
    writer: DynamoProjectionWriter, reader: DynamoProjectionReader
) -> None:
    products = [product(f"p-{i:03}") for i in range(230)]
    await writer.apply([ProductChanged(p) for p in products])
    ids = [p.id for p in products] + [p.id for p in products[::7]] + ["missing-1", "missing-2"]
    random.Random(3).shuffle(ids)

    found = await reader.products_by_id(ids)

    assert found == {p.id: p for p in products}


async def test_by_id_reads_each_kind(
    writer: DynamoProjectionWriter, reader: DynamoProjectionReader
) -> None:
    p = product("p-1", description=None)
    c = customer("c-1", points=40)
    o = dataclasses.replace(order("o-1", version=3), failure_reason="none really")
    await writer.apply([ProductChanged(p), CustomerChanged(c), OrderChanged(o)])

    assert await reader.products_by_id(["p-1", "c-1"]) == {"p-1": p}
    assert await reader.customers_by_id(["c-1", "o-1"]) == {"c-1": c}
    assert await reader.orders_by_id(["o-1"]) == {"o-1": o}
    assert await reader.orders_by_id([]) == {}


async def test_scan_all_returns_every_item_across_pages(
    writer: DynamoProjectionWriter,
) -> None:
    # Large descriptions push the scan past DynamoDB's 1 MB page.
    big = "x" * 20_000
    await writer.apply([ProductChanged(product(f"p-{i:03}", description=big)) for i in range(80)])
    await writer.put_region_control(RegionControl("us-east-1", 1))

    scanned = [item async for item in writer.scan_all()]

    assert len(scanned) == 81
    assert len({(i["pk"], i["sk"]) for i in scanned}) == 81
