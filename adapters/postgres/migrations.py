"""Versioned schema migrations: the SQL files of `migrations/`, applied once each, in order.

Every instance runs `apply_migrations` at start-up; the advisory lock makes the ones that
start together wait for the first instead of applying the same file twice.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from adapters.postgres.errors import MigrationError
from adapters.postgres.pool import Connection

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Any constant works as long as nothing else uses it for another lock: "hemi" in ASCII.
MIGRATION_LOCK_KEY = 0x68656D69

_NAME = re.compile(r"^\d{4}_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in the order they apply (their names start with a number)."""
    files = sorted(p for p in directory.iterdir() if p.suffix == ".sql")
    for path in files:
        if not _NAME.match(path.name):
            raise MigrationError(f"migration file {path.name!r} is not named NNNN_name.sql")
    return [Migration(path.name, path.read_text(encoding="utf-8")) for path in files]


async def apply_migrations(conn: Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the pending migrations, each in its own transaction; returns their names.

    Raises MigrationError if a file already applied has changed since: the database would
    silently differ from what the files describe.
    """
    migrations = load_migrations(directory)
    # A session-level lock, not a transaction-level one: it must span several transactions.
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        # Created under the lock: two concurrent CREATE TABLE IF NOT EXISTS can still collide.
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                name       text PRIMARY KEY,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        rows = await conn.fetch("SELECT name, checksum FROM schema_migrations")
        applied = {row["name"]: row["checksum"] for row in rows}
        done: list[str] = []
        for migration in migrations:
            recorded = applied.get(migration.name)
            if recorded is not None:
                if recorded != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.name} changed after it was applied; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            async with conn.transaction():
                # No arguments: the simple query protocol runs a file of many statements.
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                    migration.name,
                    migration.checksum,
                )
            log.info("applied migration %s", migration.name)
            done.append(migration.name)
        return done
    finally:
        # A lost connection released the lock with its session; unlocking would only raise.
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
