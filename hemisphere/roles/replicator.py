"""`hemisphere replicator`: this region's stand-in for DynamoDB global table replication
(regions.replication), configured from the environment only:

    HEMISPHERE_REGION              this region (the stream it reads)
    AWS_ENDPOINT_URL               this region's AWS endpoint
    HEMISPHERE_REPLICA_ENDPOINTS   the other regions: `eu-west-1=http://127.0.0.1:P,...`
    HEMISPHERE_TABLE               the table name (the same in every region)
    AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY   as the other roles
    HEMISPHERE_REPLICATOR_STATUS_PORT  optional: GET http://127.0.0.1:PORT/status → lag JSON

Several replicators of one region may run: each pipeline (source → target) has its own lease,
so one process replicates to each target at a time and the others stand by. SIGTERM, SIGINT
or SIGHUP stop it: the pipelines stop, give their leases up and the process exits 0 (what was
applied since the last checkpoint is sent again by the next holder, as no-ops).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from adapters.aws import REPLICATION_AGENT
from adapters.dynamodb.client import client_config, create_client
from adapters.dynamodb.leases import DynamoCheckpointStore, DynamoLeaseStore
from adapters.dynamodb.replication import DynamoReplicaTable, DynamoReplicationSource
from adapters.dynamodb.stream import create_streams_client
from hemisphere.aws_credentials import aws_credentials
from hemisphere.logs import configure_logging
from hemisphere.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from hemisphere.metrics import replication_metrics
from hemisphere.settings import Settings, SettingsError
from regions.replication import (
    ReplicationTimings,
    Replicator,
    TargetReplicator,
    pipeline_name,
)
from subscriptions.lease import LeaseKeeper, unique_holder

if TYPE_CHECKING:
    from argparse import _SubParsersAction

log = logging.getLogger(__name__)

STATUS_LOG_INTERVAL = 10.0
# A pipeline's lease: longer than the publisher's (5 s), because losing it to a slow renewal
# on a loaded endpoint stalls replication, while a takeover only has to beat minutes.
LEASE_SECONDS = 10.0
LEASE_RENEW_SECONDS = 2.0
# The API's clients fail fast (a request must not wait on a dead endpoint); a replicator is
# a background worker: a busy endpoint (or a far region) answering in 5 s is slow, not down.
# A region that is down refuses or resets connections, which still shows at once.
CONFIG = client_config(
    connect_timeout=2.0, read_timeout=10.0, max_attempts=3, user_agent_extra=REPLICATION_AGENT
)
# How long the pipelines get to stop and give their leases up.
STOP_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class ReplicatorConfig:
    settings: Settings
    replicas: Mapping[str, str]  # region -> AWS endpoint URL
    status_port: int | None

    @classmethod
    def from_settings(cls, settings: Settings) -> ReplicatorConfig:
        replicas = dict(settings.replica_endpoints)
        if not replicas:
            raise SettingsError(
                "HEMISPHERE_REPLICA_ENDPOINTS is not set (e.g. "
                "eu-west-1=http://127.0.0.1:8012,ap-southeast-2=http://127.0.0.1:8022)"
            )
        if settings.region in replicas:
            raise SettingsError(
                f"HEMISPHERE_REPLICA_ENDPOINTS names this region ({settings.region}): "
                "list only the other regions"
            )
        return cls(settings, replicas, settings.replicator_status_port)


def register(commands: _SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "replicator",
        help="apply this region's DynamoDB changes to the other regions' tables (the global "
        "table stand-in); configured by HEMISPHERE_REGION, AWS_ENDPOINT_URL, "
        "HEMISPHERE_REPLICA_ENDPOINTS",
    )
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    config = ReplicatorConfig.from_settings(Settings.from_env(os.environ))
    configure_logging(config.settings, stream=sys.stderr)
    # At DEBUG the lag status is what we want to see, not every signed request.
    for noisy in ("botocore", "aiobotocore", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLogger().level))
    asyncio.run(run_replicator(config))
    return 0


async def run_replicator(
    config: ReplicatorConfig,
    *,
    stop: asyncio.Event | None = None,
    timings: ReplicationTimings | None = None,
    started: asyncio.Future[Replicator] | None = None,
) -> None:
    """Replicate until `stop` is set or a stop signal arrives."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(signum, stop.set)
    settings = config.settings
    credentials = aws_credentials(settings)
    holder = unique_holder()
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            create_client(settings.aws_endpoint_url, settings.region, credentials, config=CONFIG)
        )
        streams = await stack.enter_async_context(
            create_streams_client(
                settings.aws_endpoint_url, settings.region, credentials, config=CONFIG
            )
        )
        source = DynamoReplicationSource(client, streams, settings.table_name)
        pipelines = []
        for target_region, endpoint in config.replicas.items():
            target_client = await stack.enter_async_context(
                create_client(endpoint, target_region, credentials, config=CONFIG)
            )
            name = pipeline_name(settings.region, target_region)
            pipelines.append(
                TargetReplicator(
                    settings.region,
                    source,
                    DynamoReplicaTable(target_client, settings.table_name, target_region),
                    DynamoCheckpointStore(client, settings.table_name, name),
                    LeaseKeeper(
                        DynamoLeaseStore(client, settings.table_name, name),
                        holder,
                        duration=LEASE_SECONDS,
                        renew_every=LEASE_RENEW_SECONDS,
                    ),
                    timings,
                )
            )
        replicator = Replicator(settings.region, pipelines)
        if config.status_port is not None:
            server = await serve_status(replicator, config.status_port)
            stack.push_async_callback(_close_server, server)
        running = asyncio.create_task(replicator.run(), name="replicator")
        reporter = asyncio.create_task(_log_status(replicator), name="replicator-status")
        log.info("replicator %s: replicating to %s", settings.region, ", ".join(config.replicas))
        if started is not None:
            started.set_result(replicator)
        try:
            await stop.wait()
        finally:
            reporter.cancel()
            running.cancel()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_GRACE_SECONDS):
                    await asyncio.gather(running, reporter, return_exceptions=True)
        log.info("replicator %s: stopped", settings.region)


async def _log_status(replicator: Replicator) -> None:
    while True:
        await asyncio.sleep(STATUS_LOG_INTERVAL)
        log.debug("replication status: %s", orjson.dumps(replicator.status()).decode())


async def serve_status(replicator: Replicator, port: int) -> asyncio.Server:
    """A tiny HTTP endpoint on 127.0.0.1:`port`: GET /status (or /) → the lag JSON; GET
    /metrics → the same for Prometheus."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b""
            content_type = b"application/json"
            if path in (b"/", b"/status"):
                status, body = b"200 OK", orjson.dumps(replicator.status())
            elif path == b"/metrics":
                status, body = b"200 OK", replication_metrics(replicator.status())
                content_type = METRICS_CONTENT_TYPE.encode()
            elif path == b"/healthz":
                status, body = b"200 OK", b'{"status": "alive"}'
            else:
                status, body = b"404 Not Found", b'{"error": "GET /status"}'
            writer.write(
                b"HTTP/1.1 " + status + b"\r\ncontent-type: " + content_type + b"\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\n"
                b"connection: close\r\n\r\n" + body
            )
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", port)


async def _close_server(server: asyncio.Server) -> None:
    server.close()
    await server.wait_closed()
