"""Fencing on real backends: the epoch in PostgreSQL (compare-and-set, checked in every saga
step and catalog write) and in the replicated control item (a stale primary learns of the
promotion through replication and refuses checkouts with ReadOnlyRegion)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

from adapters.dynamodb.topology import DynamoTopologyStore
from adapters.postgres.catalog import PostgresCatalog
from adapters.postgres.pool import create_pool
from adapters.postgres.profiles import PostgresProfileStore
from adapters.postgres.saga import PostgresSagaStore
from adapters.postgres.topology import EpochFence, PostgresTopology
from domain import saga_forward as forward
from domain.commands import CancelOrder, Checkout, UpdateCustomerProfile, UpsertProduct
from domain.errors import ReadOnlyRegionError, StaleEpochError
from domain.model import Money, RegionControl
from domain.saga import checkout_input, order_id_for
from domain.saga_errors import step_error_name
from regions.control import EpochConflictError, TopologyWatcher, WriteFence, claim_primary
from regions.routing import RoutedOrderWorkflows
from tests.support.payments import TOKEN_VISA, FakePaymentProvider
from tests.support.replicated_regions import (
    ReplicatedRegions,
    eventually,
    moto_servers,
    replicated_regions,
)
from tests.support.saga import checkout_command, steps_recorded, stock_shop

pytestmark = pytest.mark.integration

US, EU = "us-east-1", "eu-west-1"


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool[Any]]:
    pool = await create_pool(pg_dsn, min_size=1, max_size=4)
    await stock_shop(pool, [{"id": "p-0001", "price": 1000, "available": 3}], [{"id": "c-0001"}])
    yield pool
    await pool.close()


@pytest.fixture
def topology(pool: asyncpg.Pool[Any], pg_dsn: str) -> PostgresTopology:
    return PostgresTopology(pool, pg_dsn)


async def test_the_database_epoch_only_goes_up_and_one_region_owns_each(
    topology: PostgresTopology,
) -> None:
    assert await topology.init(RegionControl(US, 1))
    assert not await topology.init(RegionControl(EU, 1))  # never changes a record
    assert not await topology.claim(RegionControl(EU, 1))  # a rival claim of epoch 1
    assert await topology.claim(RegionControl(US, 1))  # the same claim again: idempotent
    assert await topology.claim(RegionControl(EU, 2))
    assert not await topology.claim(RegionControl(US, 1))  # older
    assert not await topology.claim(RegionControl(US, 2))  # rival
    assert await topology.read() == RegionControl(EU, 2)


async def test_claim_primary_raises_the_epoch_and_refuses_a_stale_retry(
    topology: PostgresTopology,
) -> None:
    await topology.init(RegionControl(US, 1))
    assert await claim_primary(EU, [topology]) == RegionControl(EU, 2)
    assert await claim_primary(EU, [topology], epoch=2) == RegionControl(EU, 2)  # retried
    with pytest.raises(EpochConflictError):
        await claim_primary(US, [topology], epoch=2)


def _order(key: str = "k1") -> tuple[str, Checkout, dict[str, Any]]:
    command = checkout_command(
        {
            "customerId": "c-0001",
            "lines": [{"productId": "p-0001", "quantity": 1}],
            "paymentToken": TOKEN_VISA,
            "idempotencyKey": key,
        }
    )
    order_id = order_id_for(command.customer_id, command.idempotency_key)
    return order_id, command, json.loads(checkout_input(command, US))


async def test_a_saga_step_of_a_demoted_primary_writes_nothing(
    pool: asyncpg.Pool[Any], pg_dsn: str, topology: PostgresTopology
) -> None:
    await topology.init(RegionControl(US, 1))
    old = PostgresSagaStore(pool, pg_dsn, FakePaymentProvider(), fence=EpochFence(US, 1))
    order_id, command, execution_input = _order()
    await old.create_order(order_id, US, command, execution_input)

    await claim_primary(EU, [topology])  # the promotion, replicated into this database

    with pytest.raises(StaleEpochError) as refused:
        await old.run_step(order_id, forward.RESERVE_INVENTORY)
    assert step_error_name(refused.value) == "Region.Fenced"
    assert refused.value.error_type == "ReadOnlyRegion"
    assert await steps_recorded(pool, order_id) == {"CreateOrder"}
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT reserved FROM inventory") == 0
    # The new primary's worker, under the new epoch, goes on.
    new = PostgresSagaStore(pool, pg_dsn, FakePaymentProvider(), fence=EpochFence(EU, 2))
    await new.run_step(order_id, forward.RESERVE_INVENTORY)
    assert await steps_recorded(pool, order_id) == {"CreateOrder", "ReserveInventory"}


async def test_a_catalog_write_of_a_demoted_primary_writes_nothing(
    pool: asyncpg.Pool[Any], pg_dsn: str, topology: PostgresTopology
) -> None:
    await topology.init(RegionControl(US, 1))
    await claim_primary(EU, [topology])
    catalog = PostgresCatalog(pool, pg_dsn, fence=EpochFence(US, 1))
    command = UpsertProduct(
        id="p-0001",
        sku="SKU-1",
        name="renamed",
        description="",
        category="c",
        price=Money(amount=1, currency="EUR"),
        available=1,
    )
    with pytest.raises(StaleEpochError):
        await catalog.upsert_product(command)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT name FROM products WHERE id = 'p-0001'") != "renamed"


# --- the control item, replicated --------------------------------------------------------------


@pytest.fixture(scope="module")
def endpoints() -> Iterator[list[str]]:
    with moto_servers(2) as urls:
        yield urls


@pytest.fixture
async def world(endpoints: list[str], table_name: str) -> AsyncIterator[ReplicatedRegions]:
    async with replicated_regions(endpoints, table_name, names=(US, EU)) as regions:
        yield regions


class RecordingWorkflows:
    def __init__(self) -> None:
        self.started: list[str] = []

    async def start_checkout(self, command: Checkout, placed_in: str) -> bool:
        self.started.append(command.idempotency_key)
        return False

    async def start_cancellation(self, command: CancelOrder) -> None:
        self.started.append(command.idempotency_key)


async def test_a_stale_primary_learns_the_promotion_by_replication_and_refuses_checkouts(
    world: ReplicatedRegions,
) -> None:
    us_store = DynamoTopologyStore(world[US].client, world.table, US)
    eu_store = DynamoTopologyStore(world[EU].client, world.table, EU)
    await us_store.claim(RegionControl(US, 1))
    watcher = TopologyWatcher(us_store.read)
    await watcher.refresh()
    local, remote = RecordingWorkflows(), RecordingWorkflows()
    fence = WriteFence(US, RegionControl(US, 1), watcher)
    workflows = RoutedOrderWorkflows(fence, {US: local, EU: remote})
    _, command, _ = _order("before")
    await workflows.start_checkout(command, US)
    assert local.started == ["before"]

    # EU is promoted (the epoch after the database's): only its own control item is
    # written here; replication tells US.
    await claim_primary(EU, [eu_store], epoch=2)

    async def learned() -> bool:
        known = await watcher.refresh()
        return known == RegionControl(EU, 2)

    await eventually(learned)
    _, command, _ = _order("after")
    with pytest.raises(ReadOnlyRegionError) as refused:
        await workflows.start_checkout(command, US)
    assert refused.value.error_type == "ReadOnlyRegion"
    assert local.started == ["before"] and remote.started == []

    # A secondary that knows the same record sends its writes to the new primary.
    secondary = RoutedOrderWorkflows(
        WriteFence(US, RegionControl(EU, 1), watcher), {US: local, EU: remote}
    )
    await secondary.start_checkout(command, US)
    assert remote.started == ["after"]


async def test_a_profile_update_of_a_demoted_primary_writes_nothing(
    pool: asyncpg.Pool[Any], pg_dsn: str, topology: PostgresTopology
) -> None:
    await topology.init(RegionControl(US, 1))
    await claim_primary(EU, [topology])
    store = PostgresProfileStore(pool, pg_dsn, fence=EpochFence(US, 1))
    command = UpdateCustomerProfile(
        customer_id="c-0001", name="New name", email=None, idempotency_key="k"
    )
    with pytest.raises(StaleEpochError):
        await store.apply_profile_update("request-1", command)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM profile_update_requests") == 0
    # Under the new epoch the same request applies.
    current = PostgresProfileStore(pool, pg_dsn, fence=EpochFence(EU, 2))
    assert await current.apply_profile_update("request-1", command) == "applied"
