"""A secondary region's API on a read-only hot standby (a physical replica of the primary's
PostgreSQL): it starts with demo data and a rebuild asked for, applies no migration, writes
nothing, reads, and reports ready."""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from adapters.postgres.migrations import apply_migrations
from adapters.postgres.pool import create_pool
from adapters.postgres.seed import seed_demo_data
from domain.commands import UpsertProduct
from domain.errors import ReadOnlyRegionError
from domain.model import Money
from hemisphere.bootstrap import start_runtime
from hemisphere.embedded_postgres import EmbeddedPostgres, _bin
from hemisphere.readiness import Readiness
from hemisphere.runtime import StartupOptions
from tests.support.app import SETTINGS

NEW_PRODUCT = UpsertProduct(
    id=None,
    sku="SKU-NEW",
    name="New",
    description=None,
    category="tools",
    price=Money(amount=100, currency="USD"),
    available=1,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture
def own_tmp() -> Iterator[Path]:
    """A directory outside pytest's base temp: concurrent pytest runs on this machine prune
    each other's older base temps, which would pull the data from under a running server."""
    with tempfile.TemporaryDirectory(prefix="hemisphere-test-") as tmp:
        yield Path(tmp)


def base_backup(primary: EmbeddedPostgres, target: Path) -> None:
    """A standby of `primary` in `target` (pg_basebackup -R: it starts as a hot standby)."""
    target.mkdir(mode=0o700)
    user = "pgserver" if os.geteuid() == 0 else None
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(target, entry.pw_uid, entry.pw_gid)
    command = [_bin("pg_basebackup"), "-D", str(target), "-R", "-X", "stream"]
    done = subprocess.run(
        [*command, "-h", str(primary.socket_dir), "-U", "postgres"],
        user=user,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    # The primary's socket lives in its data directory: its lock file came along.
    (target / ".s.PGSQL.5432.lock").unlink(missing_ok=True)


async def test_an_api_on_a_hot_standby_reads_and_writes_nothing(
    own_tmp: Path, aws_endpoint: str, table_name: str
) -> None:
    tmp_path = own_tmp
    primary = EmbeddedPostgres(tmp_path / "primary")
    primary.start()
    standby = EmbeddedPostgres(tmp_path / "standby")
    try:
        pool = await create_pool(primary.url)
        async with pool.acquire() as conn:
            await apply_migrations(conn)
        await seed_demo_data(pool)
        await pool.close()
        base_backup(primary, tmp_path / "standby")
        standby.start()

        settings = replace(
            SETTINGS,
            region="eu-west-1",
            primary_region="us-east-1",
            database_url=standby.url,
            aws_endpoint_url=aws_endpoint,
            primary_aws_endpoint_url=aws_endpoint,
            aws_access_key_id="hemisphere-local",
            aws_secret_access_key="hemisphere-local",
            table_name=table_name,
        )
        options = StartupOptions(seed_demo_data=True, rebuild_projections=True)
        async with start_runtime(settings, options) as runtime:
            # A secondary takes no catalog writes: they answer ReadOnlyRegion, nothing written.
            with pytest.raises(ReadOnlyRegionError, match="knows no endpoint"):
                await runtime.ports.catalog.upsert_product(NEW_PRODUCT)
            found = await runtime.ports.reader.products_by_id(["p-0001"])
            assert set(found) == {"p-0001"}  # rebuilt from the standby's copy of the data
            readiness = Readiness()
            readiness.watch(runtime.probes)
            report = await readiness.refresh()
            assert report.checks == {"postgres": "ok", "dynamodb": "ok"}
            assert report.ready
    finally:
        standby.stop()
        primary.stop()
