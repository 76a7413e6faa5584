"""`hemisphere api`: the region's API alone, for a container.

Everything comes from the environment (DATABASE_URL, AWS_ENDPOINT_URL, HEMISPHERE_*): no
embedded backend, no generated secret, no file in a data directory. It waits for its
backends, serves until SIGTERM and logs to stdout. In a secondary region DATABASE_URL may be
a read-only hot standby: no migration and no write reach it (bootstrap checks).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from hemisphere.logs import configure_logging
from hemisphere.roles.serving import Shutdown, listen, run, serve_app, uvicorn_config
from hemisphere.runtime import Runtime, StartupOptions
from hemisphere.settings import Settings, SettingsError

log = logging.getLogger(__name__)


def register(commands: Any) -> None:
    api = commands.add_parser(
        "api",
        help="serve the region's API alone, configured by the environment "
        "(DATABASE_URL, AWS_ENDPOINT_URL, HEMISPHERE_*)",
    )
    api.add_argument("--host", default="0.0.0.0")
    api.add_argument("--port", type=int, default=8000)
    api.set_defaults(run=run_api)


def api_settings(env: dict[str, str]) -> Settings:
    settings = Settings.from_env(env)
    if settings.database_url is None:
        raise SettingsError("DATABASE_URL is not set (hemisphere api starts no database)")
    if settings.token_secret is None:
        raise SettingsError(
            "HEMISPHERE_TOKEN_SECRET is not set (every instance of a region must share it)"
        )
    if not settings.api_keys and not settings.iam_credentials:
        raise SettingsError(
            "neither HEMISPHERE_API_KEYS nor HEMISPHERE_IAM_CREDENTIALS is set: "
            "no caller could use the API"
        )
    return settings


def run_api(args: argparse.Namespace) -> int:
    settings = api_settings(dict(os.environ))
    configure_logging(settings)
    sock = listen(args.host, args.port)
    from hemisphere.readiness import Readiness

    shutdown = Shutdown(Readiness(), settings.shutdown_timeout_seconds)
    return run(lambda stop: serve_api(settings, sock, stop), shutdown)


async def serve_api(settings: Settings, sock: Any, shutdown: Shutdown) -> int:
    from hemisphere.app import create_app
    from hemisphere.roles.startup import started_runtime

    options = StartupOptions(
        seed_demo_data=settings.seed_demo_data,
        rebuild_projections=settings.rebuild_projections,
    )
    async with started_runtime(settings, options) as runtime:
        app = create_app(
            settings, runtime_factory=already_started(runtime), readiness=shutdown.readiness
        )
        host, port = sock.getsockname()[:2]
        log.info(
            "Hemisphere API serving region %s (primary %s) on %s:%s",
            settings.region,
            settings.primary_region,
            host,
            port,
        )
        started = await serve_app(uvicorn_config(app, sock, shutdown), sock, shutdown)
    log.info("stopped")
    return 0 if started or shutdown.requested else 1


def already_started(runtime: Runtime) -> Any:
    """A runtime factory for create_app that hands over a runtime started beforehand (so a
    start-up failure is reported by the role, not as a lifespan traceback)."""

    @contextlib.asynccontextmanager
    async def factory(settings: Settings) -> AsyncIterator[Runtime]:
        yield runtime

    return factory
