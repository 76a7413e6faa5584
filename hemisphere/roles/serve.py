"""`hemisphere serve`: one region on embedded defaults, for a laptop.

Whatever the environment leaves unset is started here as a child: PostgreSQL (pgserver's
binaries, data in DATA_DIR/postgres), the local AWS endpoint (moto server) and the simulated
card provider. Before anything starts, the data directory is locked (one `serve` per
directory) and the port bound (a taken port is refused at once). The children are
supervised (see supervision.py) and die with this process, whatever ends it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hemisphere.local_issuer import LocalIssuer
from hemisphere.logs import TERMINAL_FORMAT, configure_logging
from hemisphere.readiness import Readiness
from hemisphere.roles.ownership import own_data_dir
from hemisphere.roles.serving import (
    STOP_SIGNALS,
    Shutdown,
    interruptible_start,
    listen,
    run,
    serve_app,
    uvicorn_config,
)
from hemisphere.roles.supervision import Supervised, Supervisor
from hemisphere.settings import Settings

LOCAL_AWS_CREDENTIALS = ("hemisphere-local", "hemisphere-local")
# The demo data's first customer: GraphiQL opens with a token of theirs.
DEMO_CUSTOMER = "c-0001"

log = logging.getLogger(__name__)


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="serve one region on embedded defaults")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the embedded PostgreSQL keeps its data (default .hemisphere/)",
    )
    serve.set_defaults(run=run_serve)


def settings_for(data_dir: Path | None) -> Settings:
    settings = Settings.from_env(os.environ)
    return replace(settings, data_dir=data_dir) if data_dir is not None else settings


@dataclass
class LocalStack:
    """The children started for what the environment left unset, in start order."""

    settings: Settings
    supervised: list[Supervised] = field(default_factory=list)


def run_serve(args: argparse.Namespace) -> int:
    from hemisphere.local_defaults import remove_stack_file, with_local_secrets, write_stack_file

    settings = settings_for(args.data_dir)
    configure_logging(settings, stream=sys.stderr, text_format=TERMINAL_FORMAT)
    # pgserver narrates every pg_ctl call at INFO; its warnings are all a user needs.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    # httpx logs every request at INFO: one line per change the stream publisher sends.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with own_data_dir(settings.data_dir), contextlib.ExitStack() as children:
        sock = children.enter_context(listen(args.host, args.port))
        generated_key = not settings.api_keys
        settings = with_local_secrets(settings)
        host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
        if settings.publish_url is None:
            # The change-stream publisher calls this very API, as a stream handler calls AppSync.
            settings = replace(settings, publish_url=f"http://{host}:{args.port}/graphql")
        if settings.oidc_issuer is None and settings.cognito_user_pool_id is None:
            # The development issuer: this API signs tokens for demo customers.
            issuer = f"http://{host}:{args.port}"
            settings = replace(settings, oidc_issuer=issuer, local_issuer=True)
            LocalIssuer(settings.data_dir, issuer).remember(settings.data_dir)
        shutdown = Shutdown(Readiness(), settings.shutdown_timeout_seconds)
        with interruptible_start():
            stack = _start_local_stack(children, settings, shutdown)
        settings = stack.settings
        write_stack_file(settings.data_dir, settings)
        children.callback(remove_stack_file, settings.data_dir)
        banner = _banner(args, settings)
        code = run(
            lambda stop: _serve(
                settings,
                sock,
                stop,
                stack.supervised,
                banner=banner,
                graphiql_api_key=settings.api_keys[0] if generated_key else None,
            ),
            shutdown,
        )
        # The loop's signal handlers are gone: a second signal while the children stop must
        # not end this process halfway (the watchdog still bounds the stop).
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        return code


def _start_local_stack(
    children: contextlib.ExitStack, settings: Settings, shutdown: Shutdown
) -> LocalStack:
    from hemisphere.embedded_postgres import EmbeddedPostgres
    from hemisphere.localstack import MotoServer
    from hemisphere.payments_sim import PaymentsSimulator

    stack = LocalStack(settings)
    # They stop in reverse order: the stateless ones briefly (a kill loses nothing), then
    # PostgreSQL with whatever is left of the budget for its checkpoint.
    brief = 1.5
    if settings.database_url is None:
        postgres = EmbeddedPostgres(settings.data_dir / "postgres")
        print(f"Starting the embedded PostgreSQL (data in {postgres.data_dir}) ...", flush=True)
        url = postgres.start()
        children.callback(lambda: postgres.stop(shutdown.remaining()))
        settings = replace(settings, database_url=url)
        # Restarted on the same data: it replays its WAL; the pool reconnects by itself.
        stack.supervised.append(Supervised(postgres, "embedded-postgres"))
    if settings.aws_endpoint_url is None:
        print("Starting the local AWS endpoint (moto server) ...", flush=True)
        moto = MotoServer()
        moto.start()
        children.callback(moto.stop, brief)
        key, secret = LOCAL_AWS_CREDENTIALS
        settings = replace(
            settings,
            aws_endpoint_url=moto.url,
            aws_access_key_id=settings.aws_access_key_id or key,
            aws_secret_access_key=settings.aws_secret_access_key or secret,
        )
        stack.supervised.append(Supervised(moto, "local-aws"))
    if settings.payments_url is None:
        print("Starting the simulated card provider ...", flush=True)
        simulator = PaymentsSimulator()
        simulator.start()
        children.callback(simulator.stop, brief)
        settings = replace(settings, payments_url=simulator.url)
        stack.supervised.append(Supervised(simulator, "card-provider"))
    stack.settings = settings
    return stack


async def _serve(
    settings: Settings,
    sock: socket.socket,
    shutdown: Shutdown,
    supervised: list[Supervised],
    *,
    banner: str,
    graphiql_api_key: str | None,
) -> int:
    from hemisphere.app import create_app
    from hemisphere.roles.api import already_started
    from hemisphere.roles.startup import started_runtime
    from hemisphere.runtime import StartupOptions

    progress, close_bar = _progress_bar()
    options = StartupOptions(
        seed_demo_data=True, rebuild_projections=True, rebuild_progress=progress
    )
    async with started_runtime(settings, options) as runtime:
        close_bar()
        for child in supervised:
            if child.check == "local-aws":
                # A restarted local endpoint is empty: recreate what the runtime put there.
                child.restore = runtime.restore_aws
        supervisor = Supervisor(supervised, shutdown.fail)
        assert shutdown.readiness is not None
        shutdown.readiness.watch(supervisor.probes())
        app = create_app(
            settings,
            runtime_factory=already_started(runtime),
            graphiql_api_key=graphiql_api_key,
            graphiql_customer=DEMO_CUSTOMER if settings.local_issuer else None,
            readiness=shutdown.readiness,
        )
        async with supervisor.running():
            announcing = asyncio.create_task(_announce(banner, shutdown))
            try:
                started = await serve_app(uvicorn_config(app, sock, shutdown), sock, shutdown)
            finally:
                announcing.cancel()
            log.info("requests drained, WebSockets closed; stopping the workers and backends")
    log.info("stopping the local stack")
    return 0 if started or shutdown.requested else 1


def _progress_bar() -> tuple[Callable[[int, int], None], Callable[[], None]]:
    from tqdm import tqdm

    bar: tqdm[None] | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="Rebuilding projections", unit="item")
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    def close() -> None:
        if bar is not None:
            bar.close()

    return progress, close


async def _announce(banner: str, shutdown: Shutdown) -> None:
    """Print the banner once the server listens, so whoever reads it can connect at once."""
    while shutdown.server is None or not shutdown.server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    print(banner, flush=True)


def _banner(args: argparse.Namespace, settings: Settings) -> str:
    akid = next(iter(settings.iam_credentials))
    return "\n".join(
        [
            "",
            f"Hemisphere is serving region {settings.region} (primary: {settings.primary_region}).",
            f"  GraphiQL:   http://{args.host}:{args.port}/graphql",
            f"  API key:    {settings.current_api_key()}   (header x-api-key)",
            f"  IAM:        {akid}:{settings.iam_credentials[akid]}   (SigV4, service appsync)",
            *(
                [
                    f"  Token:      hemisphere token c-0001 --data-dir {settings.data_dir}"
                    "   (header Authorization, OIDC)"
                ]
                if settings.local_issuer
                else []
            ),
            "Press Ctrl-C to stop.",
            "",
        ]
    )
