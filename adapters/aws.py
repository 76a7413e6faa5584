"""AWS clients for every adapter: one way to build them, failing fast.

Requests serve GraphQL clients and saga steps: a call that waits 60 s on a dead endpoint
(botocore's default) holds a connection and a caller for nothing. Short timeouts and one retry
turn an outage into the adapter's named BackendUnavailableError within seconds.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from adapters.tracing import instrument
from domain.errors import BackendUnavailableError

# Error codes that mean "the service is there but cannot serve you now"; the rest of the
# ClientErrors (validation, missing resource, conditional check) are answers, not outages.
_UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)


# Named once. botocore builds its default User-Agent (SDK, OS, architecture, language and
# feature metadata, each component sanitized) twice for every request: 53 µs each here,
# about 0.1 ms of every call. A supplied one is used as it is (botocore appends its name
# and version).
USER_AGENT = "hemisphere"
# Added to the User-Agent of the global table stand-in's clients (`hemisphere replicator`):
# the local endpoint lets their stream reads wait for a change (hemisphere/moto/stream_wait.py),
# as AWS's own replication is told of one. AWS's endpoints ignore it.
REPLICATION_AGENT = "global-table-replication"


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
    user_agent_extra: str | None = None,
) -> Config:
    """Short timeouts and one retry; the pool fits ~64 concurrent requests (DataLoader batches
    of concurrent queries plus the projector's bounded writes) without queueing."""
    return Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        max_pool_connections=max_pool_connections,
        # Every request is built by an adapter from typed values; botocore re-validating
        # each against the service model costs CPU on the hot read path for nothing.
        parameter_validation=False,
        user_agent=USER_AGENT,
        user_agent_extra=user_agent_extra,
    )


@contextlib.asynccontextmanager
async def aws_client(
    service: str,
    endpoint_url: str | None,
    region: str,
    credentials: StaticCredentials | None = None,
    *,
    config: Config | None = None,
) -> AsyncIterator[Any]:
    """A client of `service` for the `async with` block. `endpoint_url` None means AWS's
    regional endpoint; the local stack passes its moto URL, a secondary region the primary's.
    `region` is the one that answers: SigV4 signs for it."""
    kwargs: dict[str, Any] = {}
    if credentials is not None:
        kwargs = {
            "aws_access_key_id": credentials.access_key_id,
            "aws_secret_access_key": credentials.secret_access_key,
            "aws_session_token": credentials.session_token,
        }
    async with aioboto3.Session().client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        config=config or client_config(),
        **kwargs,
    ) as client:
        instrument(client)
        yield client


def error_code(error: ClientError) -> str:
    """The AWS error code of a ClientError ("" when the answer names none)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` means the service cannot answer now (as opposed to a wrong request)."""
    if isinstance(error, BotoConnectionError | HTTPClientError):
        # Refused/unresolvable endpoint, connect and read timeouts, dropped connections.
        return True
    if isinstance(error, ClientError):
        code = error_code(error)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in _UNAVAILABLE_CODES or status >= 500
    return False


@contextlib.contextmanager
def translate_unavailable(
    what: str, error: type[BackendUnavailableError], advice: str = "retry later"
) -> Iterator[None]:
    """Re-raise an outage of `what` as the adapter's named `error`; any other error passes
    unchanged. Use around each call."""
    try:
        yield
    except Exception as exc:
        if is_unavailable(exc):
            raise error(f"{what} is unavailable ({exc}); {advice}") from exc
        raise
