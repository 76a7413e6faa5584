"""A projection store that is down fails fast with ProjectionStoreUnavailableError, not a hang.

No AWS endpoint needed: a closed port, and a server that accepts and never answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from adapters.dynamodb.client import StaticCredentials, client_config, create_client
from adapters.dynamodb.reader import DynamoProjectionReader
from adapters.dynamodb.table import ensure_table
from adapters.dynamodb.writer import DynamoProjectionWriter
from domain.errors import ProjectionStoreUnavailableError
from domain.events import ProductChanged
from hemisphere.localstack import free_port
from tests.support.builders import product

pytestmark = pytest.mark.integration

LOCAL = StaticCredentials("hemisphere-local", "hemisphere-local")


@pytest.fixture
async def closed_port_client() -> AsyncIterator[Any]:
    async with create_client(f"http://127.0.0.1:{free_port()}", "us-east-1", LOCAL) as client:
        yield client


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """Accepts connections, reads requests, never answers: a hung endpoint."""
    connections: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for connection in connections:
            connection.close()
        server.close()
        await server.wait_closed()


async def _fails_fast(call: Callable[[], Awaitable[object]], within: float, endpoint: str) -> None:
    started = time.monotonic()
    async with asyncio.timeout(within + 5):  # a hang fails the test rather than blocking it
        with pytest.raises(ProjectionStoreUnavailableError) as raised:
            await call()
    elapsed = time.monotonic() - started
    assert elapsed < within, f"took {elapsed:.1f}s"
    assert endpoint in raised.value.message
    assert raised.value.error_type == "ServiceUnavailable"


async def test_reader_on_a_closed_port_fails_within_seconds(closed_port_client: Any) -> None:
    reader = DynamoProjectionReader(closed_port_client, "projections")
    endpoint = closed_port_client.meta.endpoint_url

    await _fails_fast(lambda: reader.products_by_id(["p-1"]), 5.0, endpoint)
    await _fails_fast(lambda: reader.products_page(None, 10, None), 5.0, endpoint)
    await _fails_fast(lambda: reader.orders_page_by_customer("c-1", 10, None), 5.0, endpoint)
    await _fails_fast(reader.region_control, 5.0, endpoint)


async def test_writer_on_a_closed_port_fails_with_one_error_not_a_group(
    closed_port_client: Any,
) -> None:
    writer = DynamoProjectionWriter(closed_port_client, "projections")
    events = [ProductChanged(product(f"p-{i}")) for i in range(40)]

    await _fails_fast(lambda: writer.apply(events), 5.0, closed_port_client.meta.endpoint_url)


async def test_ensure_table_on_a_closed_port_fails_within_seconds(
    closed_port_client: Any,
) -> None:
    await _fails_fast(
        lambda: ensure_table(closed_port_client, "projections"),
        5.0,
        closed_port_client.meta.endpoint_url,
    )


async def test_a_hung_endpoint_times_out_instead_of_hanging(silent_server: str) -> None:
    # The production read timeout is 3 s (two attempts: ~6 s); a shorter one keeps this quick
    # while proving that the timeout reaches the HTTP layer.
    config = client_config(read_timeout=0.5)
    async with create_client(silent_server, "us-east-1", LOCAL, config=config) as client:
        reader = DynamoProjectionReader(client, "projections")

        await _fails_fast(lambda: reader.customers_by_id(["c-1"]), 4.0, silent_server)
