"""The aioboto3 DynamoDB client, tuned to fail fast, and the translation of its failures.

Reads serve GraphQL queries: a request that waits 60 s on a dead endpoint (botocore's default)
holds a client and a connection for nothing. Short timeouts and a single retry turn a down
endpoint into ProjectionStoreUnavailableError (errorType ServiceUnavailable) within seconds,
and the client (or the outbox relay) retries later.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from botocore.config import Config

from adapters.aws import (
    StaticCredentials,
    aws_client,
    client_config,
    is_unavailable,
    translate_unavailable,
)
from domain.errors import ProjectionStoreUnavailableError

# StaticCredentials and client_config live in adapters.aws; re-exported for callers here.
__all__ = [
    "StaticCredentials",
    "client_config",
    "create_client",
    "endpoint_of",
    "is_unavailable",
    "translate_errors",
]

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient


@contextlib.asynccontextmanager
async def create_client(
    endpoint_url: str | None,
    region: str,
    credentials: StaticCredentials | None = None,
    *,
    config: Config | None = None,
) -> AsyncIterator[DynamoDBClient]:
    """A DynamoDB client for the lifespan of the `async with` block."""
    async with aws_client("dynamodb", endpoint_url, region, credentials, config=config) as client:
        yield client


def endpoint_of(client: DynamoDBClient) -> str:
    return str(client.meta.endpoint_url)


@contextlib.contextmanager
def translate_errors(endpoint: str) -> Iterator[None]:
    """Re-raise an outage of the store as ProjectionStoreUnavailableError naming `endpoint`;
    any other error passes unchanged. Use around each call: `with translate_errors(url): ...`.
    """
    with translate_unavailable(
        f"the projection store at {endpoint}", ProjectionStoreUnavailableError
    ):
        yield
