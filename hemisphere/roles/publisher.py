"""`hemisphere publisher`: the region's change-stream publisher alone (what a DynamoDB stream
handler is in AWS). It reads the projection table's stream and sends each change as the
contract's publish* mutation to HEMISPHERE_PUBLISH_URL (the region's API), signed as the
region's publisher. Several may run: a lease in the table lets one publish at a time.
Configured by the environment; runs until SIGTERM, SIGINT or SIGHUP, then checkpoints and
releases its lease."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
from dataclasses import replace
from typing import Any

from hemisphere.logs import configure_logging
from hemisphere.roles.serving import Shutdown, run
from hemisphere.settings import Settings, SettingsError

log = logging.getLogger(__name__)


def register(commands: Any) -> None:
    publisher = commands.add_parser(
        "publisher",
        help="run the region's change-stream publisher alone (DynamoDB stream → publish* "
        "mutations to HEMISPHERE_PUBLISH_URL), configured by the environment",
    )
    publisher.set_defaults(run=run_publisher)


def publisher_settings(env: dict[str, str]) -> Settings:
    settings = Settings.from_env(env)
    if settings.publish_url is None:
        raise SettingsError("HEMISPHERE_PUBLISH_URL is not set (the region's API /graphql URL)")
    if settings.token_secret is None:
        raise SettingsError(
            "HEMISPHERE_TOKEN_SECRET is not set (the publisher signs as the region's "
            "publisher, derived from the secret the API shares)"
        )
    # The publisher needs no PostgreSQL: never wait for one.
    return replace(settings, database_url=None)


def run_publisher(args: argparse.Namespace) -> int:
    settings = publisher_settings(dict(os.environ))
    configure_logging(settings)
    return run(
        lambda stop: _publish(settings, stop), Shutdown(None, settings.shutdown_timeout_seconds)
    )


async def _publish(settings: Settings, shutdown: Shutdown) -> int:
    from hemisphere.aws_credentials import aws_credentials
    from hemisphere.bootstrap import open_projection_table
    from hemisphere.fanout import start_stream_publisher
    from hemisphere.roles.startup import wait_for_backends

    await wait_for_backends(settings)
    async with contextlib.AsyncExitStack() as stack:
        # The API creates the table too; whichever starts first does it (idempotent).
        dynamodb = await open_projection_table(stack, settings)
        await start_stream_publisher(stack, settings, dynamodb, aws_credentials(settings))
        stopping = asyncio.Event()
        shutdown.on_stop = stopping.set
        log.info(
            "Hemisphere stream publisher for %s: table %s → %s",
            settings.region,
            settings.table_name,
            settings.publish_url,
        )
        await stopping.wait()
    log.info("stream publisher stopped")
    return 0
