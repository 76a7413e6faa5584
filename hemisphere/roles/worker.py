"""`hemisphere worker`: the primary region's workers without the API (outbox relay, saga
steps, reconciler, profile updates), configured by the environment. On SIGTERM, SIGINT or
SIGHUP the workers stop taking tasks; a task in progress is given back (its transaction
rolls back, its message returns to the queue once its visibility timeout passes)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from dataclasses import replace
from typing import Any

from hemisphere.logs import configure_logging
from hemisphere.roles.serving import Shutdown, run
from hemisphere.settings import Settings, SettingsError

log = logging.getLogger(__name__)


def register(commands: Any) -> None:
    worker = commands.add_parser(
        "worker",
        help="run the primary region's workers (outbox relay, saga steps, reconciler, profile "
        "updates) without the API, against DATABASE_URL and AWS_ENDPOINT_URL or AWS",
    )
    worker.set_defaults(run=run_worker)


def run_worker(args: argparse.Namespace) -> int:
    settings = Settings.from_env(os.environ)
    if settings.region != settings.primary_region:
        raise SettingsError("hemisphere worker runs in the primary region only")
    if settings.database_url is None:
        raise SettingsError("DATABASE_URL is not set (hemisphere worker starts no database)")
    configure_logging(settings)
    # It answers no reads: no read cache, no subscription to the region's change feed.
    settings = replace(settings, run_workers=True, read_cache=False)
    shutdown = Shutdown(None, settings.shutdown_timeout_seconds)
    return run(lambda stop: _work(settings, stop), shutdown)


async def _work(settings: Settings, shutdown: Shutdown) -> int:
    from hemisphere.roles.startup import started_runtime
    from hemisphere.runtime import StartupOptions

    async with started_runtime(settings, StartupOptions(serves_api=False)):
        stopping = asyncio.Event()
        shutdown.on_stop = stopping.set  # until now a stop cancels the start instead
        log.info("Hemisphere workers running in %s", settings.region)
        print(f"Hemisphere workers running in {settings.region}. Press Ctrl-C to stop.", flush=True)
        await stopping.wait()
    log.info("workers stopped")
    return 0
