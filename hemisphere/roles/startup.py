"""Waiting for the backends at start-up.

Containers start in any order: the API may come up before its database or its AWS endpoint
answers. Start-up waits for each, with backoff, saying what it waits for, up to
HEMISPHERE_STARTUP_TIMEOUT; then it gives up with one line naming the backend. A backend
that answers but refuses us (a wrong password, a missing database) is no reason to wait:
that is reported at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg

from adapters.aws import is_unavailable
from adapters.dynamodb.client import create_client
from adapters.postgres.errors import describe_dsn
from adapters.postgres.pool import UNREACHABLE
from domain.errors import BackendUnavailableError
from hemisphere.aws_credentials import aws_credentials
from hemisphere.bootstrap import start_runtime
from hemisphere.roles.serving import StartupError
from hemisphere.runtime import Runtime, StartupOptions
from hemisphere.settings import Settings

log = logging.getLogger(__name__)

Attempt = Callable[[], Awaitable[None]]


async def wait_for_backends(settings: Settings, *, first_delay: float = 0.5) -> None:
    """Return once PostgreSQL and the DynamoDB endpoint answer; StartupError after the
    start-up deadline, or at once when a backend answers with a refusal."""
    deadline = time.monotonic() + settings.startup_timeout_seconds
    if settings.database_url is not None:
        dsn = settings.database_url
        await _wait(
            f"PostgreSQL at {describe_dsn(dsn)} (DATABASE_URL)",
            lambda: _postgres_answers(dsn),
            is_waitable=lambda exc: isinstance(exc, UNREACHABLE),
            deadline=deadline,
            first_delay=first_delay,
        )
    await _wait(
        f"DynamoDB at {settings.aws_endpoint_url or 'its AWS regional endpoint'}"
        + (" (AWS_ENDPOINT_URL)" if settings.aws_endpoint_url else ""),
        lambda: _dynamodb_answers(settings),
        is_waitable=is_unavailable,
        deadline=deadline,
        first_delay=first_delay,
    )


@contextlib.asynccontextmanager
async def started_runtime(
    settings: Settings, options: StartupOptions | None = None, *, first_delay: float = 0.5
) -> AsyncIterator[Runtime]:
    """bootstrap's runtime, once the backends answer. A backend that fails during the start
    itself (a slow endpoint timing out while the state machines are created, say) makes the
    whole start retry (every step is idempotent) until the start-up deadline."""
    deadline = time.monotonic() + settings.startup_timeout_seconds
    await wait_for_backends(settings, first_delay=first_delay)
    delay = first_delay
    while True:
        stack = contextlib.AsyncExitStack()
        try:
            runtime = await stack.enter_async_context(start_runtime(settings, options))
        except BackendUnavailableError as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StartupError(
                    f"start-up did not complete within HEMISPHERE_STARTUP_TIMEOUT: {exc}"
                ) from None
            log.warning("start-up interrupted (%s); starting again in %.1fs", exc, delay)
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 5.0)
            continue
        async with stack:
            yield runtime
        return


async def _wait(
    what: str,
    attempt: Attempt,
    *,
    is_waitable: Callable[[BaseException], bool],
    deadline: float,
    first_delay: float,
) -> None:
    delay = first_delay
    waited = False
    while True:
        try:
            await attempt()
        except Exception as exc:
            reason = str(exc).strip() or type(exc).__name__
            if not is_waitable(exc):
                raise StartupError(f"{what} refused the connection: {reason}") from None
            left = deadline - time.monotonic()
            if left <= 0:
                raise StartupError(
                    f"{what} did not answer within the start-up deadline "
                    f"(HEMISPHERE_STARTUP_TIMEOUT): {reason}"
                ) from None
            log.warning("waiting for %s (%s); next try in %.1fs", what, reason, min(delay, left))
            waited = True
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 5.0)
            continue
        if waited:
            log.warning("%s answers", what)
        return


async def _postgres_answers(dsn: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=2.0)
    await conn.close()


async def _dynamodb_answers(settings: Settings) -> None:
    async with create_client(
        settings.aws_endpoint_url, settings.region, aws_credentials(settings)
    ) as client:
        await client.list_tables(Limit=1)
