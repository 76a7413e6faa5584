"""A rebuild from the relational model's snapshots gives the same table as the events did."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from adapters.dynamodb.client import StaticCredentials, create_client
from adapters.dynamodb.table import delete_table, ensure_table
from adapters.dynamodb.writer import DynamoProjectionWriter
from adapters.postgres.pool import create_pool
from adapters.postgres.seed import seed_demo_data
from domain.events import CustomerChanged, Event, OrderChanged, ProductChanged
from domain.model import RegionControl
from projections.projector import Projector
from projections.rebuild import rebuild
from tests.support.builders import T0, customer, order, product

pytestmark = pytest.mark.integration

LOCAL = StaticCredentials("hemisphere-local", "hemisphere-local")


class ListSnapshotSource:
    """The SnapshotSource port in memory."""

    def __init__(self, events: list[Event]) -> None:
        self.events = events

    async def count(self) -> int:
        return len(self.events)

    async def snapshots(self) -> AsyncIterator[Event]:
        for event in self.events:
            yield event


@pytest.fixture(scope="module")
async def client(aws_endpoint: str) -> AsyncIterator[Any]:
    async with create_client(aws_endpoint, "us-east-1", LOCAL) as dynamodb:
        yield dynamodb


@pytest.fixture
async def tables(client: Any, table_name: str) -> AsyncIterator[tuple[str, str]]:
    names = (f"{table_name}-incremental", f"{table_name}-rebuilt")
    for name in names:
        await ensure_table(client, name)
    yield names
    for name in names:
        await delete_table(client, name)


def _history() -> tuple[list[Event], list[Event]]:
    """Every event of a small shop's life, in order, and the final snapshot of each aggregate."""
    events: list[Event] = []
    latest: dict[tuple[str, str], Event] = {}
    for i in range(40):
        for v in range(1, 1 + i % 3 + 1):
            events.append(ProductChanged(product(f"p-{i:03}", category=f"c{i % 4}", version=v)))
    for i in range(15):
        for v in range(1, 3):
            events.append(CustomerChanged(customer(f"c-{i:03}", version=v, points=v * 10)))
    for i in range(60):
        created = T0 + timedelta(minutes=i)
        for v in range(1, 1 + i % 5 + 1):
            events.append(
                OrderChanged(
                    order(f"o-{i:03}", customer_id=f"c-{i % 15:03}", created_at=created, version=v)
                )
            )
    for event in events:
        aggregate = (
            event.product.id
            if isinstance(event, ProductChanged)
            else event.customer.id
            if isinstance(event, CustomerChanged)
            else event.order.id
        )
        latest[(event.kind, aggregate)] = event
    return events, list(latest.values())


async def _table(writer: DynamoProjectionWriter) -> list[dict[str, Any]]:
    return sorted([item async for item in writer.scan_all()], key=lambda i: (i["pk"], i["sk"]))


async def test_rebuild_equals_applying_the_events_incrementally(
    client: Any, tables: tuple[str, str]
) -> None:
    events, snapshots = _history()
    incremental = DynamoProjectionWriter(client, tables[0])
    rebuilt = DynamoProjectionWriter(client, tables[1])
    projector = Projector(incremental)
    for start in range(0, len(events), 50):
        await projector.handle(events[start : start + 50])
    random.Random(5).shuffle(snapshots)
    progress: list[tuple[int, int]] = []

    written = await rebuild(
        ListSnapshotSource(snapshots),
        rebuilt,
        lambda done, total: progress.append((done, total)),
        batch_size=30,
    )

    assert written == len(snapshots) == 115
    assert progress[0] == (0, 115) and progress[-1] == (115, 115)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    incremental_items = await _table(incremental)
    assert len(incremental_items) == 115
    assert await _table(rebuilt) == incremental_items


async def test_rebuild_never_replaces_a_newer_item(client: Any, tables: tuple[str, str]) -> None:
    writer = DynamoProjectionWriter(client, tables[0])
    await writer.apply([OrderChanged(order("o-1", version=4))])
    await writer.put_region_control(RegionControl("us-east-1", epoch=1))
    stale: list[Event] = [OrderChanged(order("o-1", version=2)), ProductChanged(product("p-1"))]

    written = await rebuild(ListSnapshotSource(stale), writer)

    assert written == 1
    by_key = {item["pk"]: item for item in await _table(writer)}
    assert by_key["ORDER#o-1"]["version"] == 4
    assert set(by_key) == {"ORDER#o-1", "PRODUCT#p-1", "CONTROL"}


async def test_the_rebuild_command_writes_the_relational_model_into_a_fresh_table(
    client: Any, pg_dsn: str, aws_endpoint: str, table_name: str
) -> None:
    """`hemisphere projections rebuild --fresh`, as a user runs it: an item the relational
    model does not have goes with the old table; the demo catalog is written."""
    pool = await create_pool(pg_dsn, min_size=1, max_size=2)
    try:
        await seed_demo_data(pool)
    finally:
        await pool.close()
    await ensure_table(client, table_name)
    writer = DynamoProjectionWriter(client, table_name)
    await writer.apply([ProductChanged(product("p-9999"))])
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEMISPHERE_")} | {
        "DATABASE_URL": pg_dsn,
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_ACCESS_KEY_ID": LOCAL.access_key_id,
        "AWS_SECRET_ACCESS_KEY": LOCAL.secret_access_key,
        "HEMISPHERE_TABLE": table_name,
    }
    try:
        command = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hemisphere.cli",
            "projections",
            "rebuild",
            "--fresh",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(command.communicate(), 60)
        assert command.returncode == 0, err.decode()
        assert f"Rebuilt the projections in table {table_name}" in out.decode()
        keys = {item["pk"] for item in await _table(writer)}
        assert "PRODUCT#p-9999" not in keys
        assert "PRODUCT#p-0001" in keys
    finally:
        await delete_table(client, table_name)
