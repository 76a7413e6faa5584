"""Which processes settle the region's stream publication start (subscriptions.stream_publisher):
one that serves the API does, after its rebuild and before it listens; a worker does not, so
an API that starts after it and rebuilds is not published its rebuild."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from adapters.dynamodb.client import create_client
from adapters.dynamodb.leases import DynamoCheckpointStore
from adapters.dynamodb.stream import latest_stream_of
from hemisphere.aws_credentials import aws_credentials
from hemisphere.bootstrap import start_runtime
from hemisphere.runtime import StartupOptions
from subscriptions.stream_publisher import lease_name
from tests.support.app import SETTINGS

pytestmark = pytest.mark.integration


async def test_a_worker_claims_no_start_and_an_api_settles_it_before_it_serves(
    pg_dsn: str, aws_endpoint: str, table_name: str, payments_url: str
) -> None:
    settings = replace(
        SETTINGS,
        payments_url=payments_url,
        database_url=pg_dsn,
        aws_endpoint_url=aws_endpoint,
        aws_access_key_id="hemisphere-local",
        aws_secret_access_key="hemisphere-local",
        table_name=table_name,
        run_workers=False,
    )

    async def claimed() -> float | None:
        async with create_client(aws_endpoint, settings.region, aws_credentials(settings)) as db:
            stream = await latest_stream_of(db, table_name)
            assert stream is not None
            checkpoints = DynamoCheckpointStore(db, table_name, lease_name(settings.region))
            return await checkpoints.publication_start(stream)

    async with start_runtime(settings, StartupOptions(serves_api=False)):
        assert await claimed() is None
    async with start_runtime(settings, StartupOptions(rebuild_projections=True)):
        starts_at = await claimed()
        assert starts_at is not None and time.time() >= starts_at
