"""Error translation and BatchGetItem's UnprocessedKeys retry, with a fake client (no sockets).

Pure tests; they live here only because the file patterns this work may add are fixed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from adapters.dynamodb import items
from adapters.dynamodb.client import translate_errors
from adapters.dynamodb.reader import DynamoProjectionReader
from domain.errors import ProjectionStoreUnavailableError
from domain.events import ProductChanged
from tests.support.builders import product

ENDPOINT = "http://dynamodb.test:8000"


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Query",
    )


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url=ENDPOINT),
        ConnectTimeoutError(endpoint_url=ENDPOINT),
        ReadTimeoutError(endpoint_url=ENDPOINT),
        client_error("ProvisionedThroughputExceededException"),
        client_error("ThrottlingException"),
        client_error("RequestLimitExceeded"),
        client_error("InternalServerError", 500),
        client_error("SomethingNew", 503),
    ],
    ids=type,
)
def test_outages_become_projection_store_unavailable(error: Exception) -> None:
    with pytest.raises(ProjectionStoreUnavailableError) as raised, translate_errors(ENDPOINT):
        raise error

    assert ENDPOINT in raised.value.message
    assert raised.value.__cause__ is error


@pytest.mark.parametrize(
    "error",
    [
        client_error("ValidationException"),
        client_error("ResourceNotFoundException"),
        client_error("ConditionalCheckFailedException"),
        KeyError("x"),
    ],
)
def test_other_errors_pass_unchanged(error: Exception) -> None:
    with pytest.raises(type(error)) as raised, translate_errors(ENDPOINT):
        raise error

    assert raised.value is error


class UnprocessingClient:
    """BatchGetItem that leaves all but `per_call` keys unprocessed on each call."""

    def __init__(self, stored: dict[str, dict[str, Any]], per_call: int) -> None:
        self.meta = SimpleNamespace(endpoint_url=ENDPOINT)
        self.stored = stored
        self.per_call = per_call
        self.requests: list[int] = []

    async def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((table, request),) = RequestItems.items()
        keys = request["Keys"]
        assert len(keys) <= 100
        self.requests.append(len(keys))
        served, left = keys[: self.per_call], keys[self.per_call :]
        found = [self.stored[k["pk"]["S"]] for k in served if k["pk"]["S"] in self.stored]
        return {
            "Responses": {table: found},
            "UnprocessedKeys": {table: {"Keys": left}} if left else {},
        }


def _stored(n: int) -> dict[str, dict[str, Any]]:
    events = [ProductChanged(product(f"p-{i}")) for i in range(n)]
    wire = [items.item_to_wire(items.event_to_item(event)) for event in events]
    return {w["pk"]["S"]: w for w in wire}


async def test_unprocessed_keys_are_retried_until_served() -> None:
    client = UnprocessingClient(_stored(10), per_call=3)
    reader = DynamoProjectionReader(client, "t", unprocessed_backoff=0.001)  # type: ignore[arg-type]

    found = await reader.products_by_id([f"p-{i}" for i in range(10)])

    assert set(found) == {f"p-{i}" for i in range(10)}
    assert client.requests == [10, 7, 4, 1]


async def test_keys_never_processed_end_in_unavailable() -> None:
    client = UnprocessingClient(_stored(5), per_call=0)
    reader = DynamoProjectionReader(  # type: ignore[arg-type]
        client, "t", unprocessed_retries=3, unprocessed_backoff=0.001
    )

    with pytest.raises(ProjectionStoreUnavailableError, match="unprocessed"):
        await reader.products_by_id([f"p-{i}" for i in range(5)])
    assert client.requests == [5, 5, 5, 5]


async def test_ids_are_deduplicated_and_chunked_by_100() -> None:
    client = UnprocessingClient(_stored(250), per_call=100)
    reader = DynamoProjectionReader(client, "t")  # type: ignore[arg-type]
    ids = [f"p-{i}" for i in range(250)] * 2

    found = await reader.products_by_id(ids)

    assert len(found) == 250
    assert sorted(client.requests) == [50, 100, 100]


async def test_no_ids_no_request() -> None:
    client = UnprocessingClient({}, per_call=100)
    reader = DynamoProjectionReader(client, "t")  # type: ignore[arg-type]

    assert await reader.products_by_id([]) == {}
    assert client.requests == []
