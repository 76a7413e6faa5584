"""Migrations: applied once, in order, recorded, and safe when instances start together."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from adapters.postgres.errors import MigrationError
from adapters.postgres.migrations import apply_migrations, load_migrations
from tests.support.stack import with_database

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def empty_database(server_url: str) -> AsyncIterator[str]:
    """A database with no migrations at all (pg_dsn's are already migrated)."""
    name = f"hemisphere_e_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await admin.close()
    try:
        yield with_database(server_url, name)
    finally:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def empty_dsn(database_url: str) -> AsyncIterator[str]:
    async with empty_database(database_url) as dsn:
        yield dsn


async def test_a_migrated_database_has_nothing_pending_and_records_each_file(
    pg_dsn: str,
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await apply_migrations(conn) == []
        recorded = await conn.fetch("SELECT name, checksum FROM schema_migrations ORDER BY name")
        files = load_migrations()
        assert [(r["name"], r["checksum"]) for r in recorded] == [
            (m.name, m.checksum) for m in files
        ]
        assert "0001_initial.sql" in [m.name for m in files]
    finally:
        await conn.close()


async def test_migrations_apply_once_then_are_idempotent(empty_dsn: str) -> None:
    conn = await asyncpg.connect(empty_dsn)
    try:
        assert await apply_migrations(conn) == [m.name for m in load_migrations()]
        assert await apply_migrations(conn) == []
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        assert {
            "customers",
            "products",
            "inventory",
            "orders",
            "order_lines",
            "order_status_history",
            "payments",
            "outbox",
            "schema_migrations",
        } <= tables
    finally:
        await conn.close()


async def test_two_instances_migrating_at_once_apply_each_file_once(empty_dsn: str) -> None:
    first, second = await asyncpg.connect(empty_dsn), await asyncpg.connect(empty_dsn)
    try:
        results = await asyncio.gather(apply_migrations(first), apply_migrations(second))
        names = [m.name for m in load_migrations()]
        assert sorted(results, key=len) == [[], names]
        assert await first.fetchval("SELECT count(*) FROM schema_migrations") == len(names)
        # The session lock was given back: a third run neither waits nor applies anything.
        assert await asyncio.wait_for(apply_migrations(second), timeout=5) == []
    finally:
        await first.close()
        await second.close()


async def test_new_files_apply_in_order_and_a_failing_one_is_not_recorded(
    empty_dsn: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x int);")
    (tmp_path / "0002_b.sql").write_text("INSERT INTO a VALUES (1); INSERT INTO a VALUES (2);")
    conn = await asyncpg.connect(empty_dsn)
    try:
        assert await apply_migrations(conn, tmp_path) == ["0001_a.sql", "0002_b.sql"]
        (tmp_path / "0003_bad.sql").write_text(
            "INSERT INTO a VALUES (3); INSERT INTO missing VALUES (1);"
        )
        with pytest.raises(asyncpg.UndefinedTableError):
            await apply_migrations(conn, tmp_path)
        # The failed file left neither its rows nor its record, and the lock is free.
        assert await conn.fetchval("SELECT count(*) FROM a") == 2
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 2
        (tmp_path / "0003_bad.sql").write_text("INSERT INTO a VALUES (3);")
        assert await apply_migrations(conn, tmp_path) == ["0003_bad.sql"]
    finally:
        await conn.close()


async def test_an_applied_file_that_changed_stops_the_start(empty_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x int);")
    conn = await asyncpg.connect(empty_dsn)
    try:
        await apply_migrations(conn, tmp_path)
        (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x bigint);")
        with pytest.raises(MigrationError, match=r"0001_a\.sql changed"):
            await apply_migrations(conn, tmp_path)
    finally:
        await conn.close()


def test_misnamed_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "initial.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        load_migrations(tmp_path)
