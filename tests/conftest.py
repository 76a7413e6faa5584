"""Backends for the tests: the machine's PostgreSQL and Redis when DATABASE_URL / REDIS_URL are
set (CI), embedded ones otherwise (a fresh machine with pip alone); the local AWS endpoint
(moto server) is always a child process on a free port."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from hemisphere.payments_sim import PaymentsSimulator
from tests.support import stack


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A server URL; each test that needs a database gets its own (see `pg_dsn`)."""
    with stack.postgres_server(os.environ.get("DATABASE_URL")) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with stack.redis_server(os.environ.get("REDIS_URL")) as url:
        yield url


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    with stack.moto_server() as url:
        yield url


@pytest.fixture(scope="session")
def payments_url() -> Iterator[str]:
    """The simulated card provider, one process for the session."""
    with PaymentsSimulator() as simulator:
        yield simulator.url


@pytest.fixture(scope="session")
def migrated_template(database_url: str) -> Iterator[str]:
    """A database with every migration applied, copied for each test (fast and isolated)."""
    with stack.template_database(database_url) as name:
        yield name


@pytest.fixture
async def pg_dsn(database_url: str, migrated_template: str) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own."""
    async with stack.database_from_template(database_url, migrated_template) as dsn:
        yield dsn


@pytest.fixture
def table_name() -> str:
    """A DynamoDB table name of this test's own."""
    return f"hemisphere-test-{uuid.uuid4().hex[:12]}"
