"""The pool: jsonb as Python values, and a down database reported at once, not a hang."""

from __future__ import annotations

import socket
import time

import pytest

from adapters.postgres.errors import RelationalStoreUnavailableError
from adapters.postgres.pool import connect, create_pool
from domain.errors import BackendUnavailableError

pytestmark = pytest.mark.integration


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_pool_decodes_jsonb(pg_dsn: str) -> None:
    pool = await create_pool(pg_dsn, min_size=0, max_size=2)
    try:
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT $1::jsonb", {"a": [1, "b"]}) == {"a": [1, "b"]}
    finally:
        await pool.close()


@pytest.mark.parametrize("min_size", [0, 1])
async def test_a_refused_connection_fails_fast_with_a_named_error(min_size: int) -> None:
    dsn = f"postgresql://postgres:s3cret@127.0.0.1:{closed_port()}/shop"
    started = time.monotonic()
    with pytest.raises(RelationalStoreUnavailableError) as caught:
        await create_pool(dsn, min_size=min_size, max_size=2, connect_timeout=1)
    assert time.monotonic() - started < 3
    assert isinstance(caught.value, BackendUnavailableError)
    assert caught.value.error_type == "ServiceUnavailable"
    assert "PostgreSQL at 127.0.0.1" in caught.value.message
    assert "s3cret" not in caught.value.message


async def test_an_unanswering_server_times_out() -> None:
    # A listening socket that never speaks: the TCP connect succeeds, the handshake hangs.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(RelationalStoreUnavailableError):
            await connect(f"postgresql://postgres@127.0.0.1:{port}/shop", connect_timeout=0.5)
        assert time.monotonic() - started < 3


async def test_a_release_sends_nothing_and_still_ends_an_open_transaction(pg_dsn: str) -> None:
    """asyncpg's default reset query on release (RESET ALL and the rest) was a round trip the
    releasing code waited for; nothing here leaves session state on a pooled connection."""
    pool = await create_pool(pg_dsn, min_size=1, max_size=1)
    sent: list[str] = []
    try:
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda record: sent.append(record.query))
            await conn.execute("SELECT 1")
        async with pool.acquire() as conn:
            await conn.execute("SELECT 2")
            # A transaction left open (not through conn.transaction()) is rolled back.
            await conn.execute("BEGIN")
            await conn.execute("CREATE TABLE left_open (id int)")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT to_regclass('left_open')") is None
    finally:
        await pool.close()
    assert sent[:2] == ["SELECT 1", "SELECT 2"]
    assert not any("RESET" in query for query in sent)
