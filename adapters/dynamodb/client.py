"""The aioboto3 DynamoDB client, tuned to fail fast, and the translation of its failures.

Reads serve GraphQL queries: a request that waits 60 s on a dead endpoint (botocore's default)
holds a client and a connection for nothing. Short timeouts and a single retry turn a down
endpoint into ProjectionStoreUnavailableError (errorType ServiceUnavailable) within seconds,
and the client (or the outbox relay) retries later.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from domain.errors import ProjectionStoreUnavailableError

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient

# Error codes that mean "the service is there but cannot serve you now"; the rest of the
# ClientErrors (validation, missing table, conditional check) are answers, not outages.
_UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)


@dataclass(frozen=True, slots=True)
class StaticCredentials:
    """Explicit credentials (the local endpoint's); None means botocore's default chain."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


def client_config(
    *,
    connect_timeout: float = 1.0,
    read_timeout: float = 3.0,
    max_attempts: int = 2,
    max_pool_connections: int = 64,
) -> Config:
    """Short timeouts and one retry; the pool fits ~64 concurrent requests (DataLoader batches
    of concurrent queries plus the projector's bounded writes) without queueing."""
    return Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        max_pool_connections=max_pool_connections,
        # Every request is built by this adapter from typed values; botocore re-validating
        # each against the service model costs CPU on the hot read path for nothing.
        parameter_validation=False,
    )


@contextlib.asynccontextmanager
async def create_client(
    endpoint_url: str | None,
    region: str,
    credentials: StaticCredentials | None = None,
    *,
    config: Config | None = None,
) -> AsyncIterator[DynamoDBClient]:
    """A DynamoDB client for the lifespan of the `async with` block.

    `endpoint_url` None means AWS's regional endpoint; the local stack passes its moto URL.
    """
    session = aioboto3.Session()
    kwargs: dict[str, Any] = {}
    if credentials is not None:
        kwargs = {
            "aws_access_key_id": credentials.access_key_id,
            "aws_secret_access_key": credentials.secret_access_key,
            "aws_session_token": credentials.session_token,
        }
    async with session.client(
        "dynamodb",
        region_name=region,
        endpoint_url=endpoint_url,
        config=config or client_config(),
        **kwargs,
    ) as client:
        yield client


def endpoint_of(client: DynamoDBClient) -> str:
    return str(client.meta.endpoint_url)


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` means the store cannot answer now (as opposed to a wrong request)."""
    if isinstance(error, BotoConnectionError | HTTPClientError):
        # Refused/unresolvable endpoint, connect and read timeouts, dropped connections.
        return True
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in _UNAVAILABLE_CODES or status >= 500
    return False


@contextlib.contextmanager
def translate_errors(endpoint: str) -> Iterator[None]:
    """Re-raise an outage of the store as ProjectionStoreUnavailableError naming `endpoint`;
    any other error passes unchanged. Use around each call: `with translate_errors(url): ...`.
    """
    try:
        yield
    except Exception as error:
        if is_unavailable(error):
            raise ProjectionStoreUnavailableError(
                f"the projection store at {endpoint} is unavailable ({error}); retry later"
            ) from error
        raise
