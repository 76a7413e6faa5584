"""`hemisphere`: serve the API, export the AppSync schema, rebuild the projections."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path

from hemisphere.runtime import Runtime
from hemisphere.settings import Settings, SettingsError

LOCAL_AWS_CREDENTIALS = ("hemisphere-local", "hemisphere-local")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    from domain.errors import BackendUnavailableError
    from hemisphere.roles.serving import Interrupted, StartupError

    try:
        return int(args.run(args))
    except SettingsError as exc:
        print(f"hemisphere: {exc}", file=sys.stderr)
        return 2
    except (StartupError, BackendUnavailableError) as exc:
        # Expected failures of a start (a port taken, a backend that never answered): one
        # line that names the cause, not a traceback.
        print(f"hemisphere: {exc}", file=sys.stderr)
        return 1
    except Interrupted:
        return 0  # stopped by a signal while starting: what was started has been stopped
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hemisphere", description=__doc__)
    commands = parser.add_subparsers(title="commands")

    serve = commands.add_parser("serve", help="serve one region on embedded defaults")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the embedded PostgreSQL keeps its data (default .hemisphere/)",
    )
    serve.set_defaults(run=_serve)

    worker = commands.add_parser(
        "worker",
        help="run the primary region's workers (outbox relay, saga steps, reconciler, profile "
        "updates) without the API, against DATABASE_URL and AWS_ENDPOINT_URL or AWS",
    )
    worker.set_defaults(run=_worker)

    schema = commands.add_parser("schema", help="the AppSync schema")
    schema_commands = schema.add_subparsers(title="schema commands")
    export = schema_commands.add_parser("export", help="print the AppSync SDL")
    export.add_argument(
        "--check",
        action="store_true",
        help="exit 1 and show the difference if the code and schema/appsync.graphql disagree",
    )
    export.add_argument(
        "--contract",
        type=Path,
        default=None,
        help="compare with this SDL instead of schema/appsync.graphql",
    )
    export.set_defaults(run=_schema_export)

    projections = commands.add_parser("projections", help="the DynamoDB projections")
    projection_commands = projections.add_subparsers(title="projections commands")
    rebuild = projection_commands.add_parser(
        "rebuild", help="recreate every projection item from PostgreSQL"
    )
    rebuild.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="find a running `hemisphere serve`'s backends here",
    )
    rebuild.add_argument("--fresh", action="store_true", help="delete and recreate the table first")
    rebuild.set_defaults(run=_projections_rebuild)

    # Command groups that live in modules of their own add themselves here, one call each
    # (`register(commands)`), so this module does not grow with every role.
    from hemisphere.roles.replicator import register as register_replicator

    register_replicator(commands)
    from hemisphere.roles.api import register as register_api

    register_api(commands)
    from hemisphere.drill import register as register_drill

    register_drill(commands)
    from hemisphere.drill import register as register_drill

    register_drill(commands)
    from hemisphere.up import register as register_up

    register_up(commands)
    from hemisphere.appsync_export import register as register_export

    register_export(commands)
    return parser


def _settings(data_dir: Path | None) -> Settings:
    settings = Settings.from_env(os.environ)
    return replace(settings, data_dir=data_dir) if data_dir is not None else settings


def _schema_export(args: argparse.Namespace) -> int:
    from resolvers.schema import build_schema
    from schema.export import CONTRACT_PATH, contract_diff, export_sdl

    schema = build_schema()
    if not args.check:
        sys.stdout.write(export_sdl(schema))
        return 0
    contract = args.contract or CONTRACT_PATH
    diff = contract_diff(schema, contract)
    if diff:
        sys.stdout.write(diff)
        print(
            f"\nThe schema in code differs from {contract}: the contract changes only "
            "through an issue.",
            file=sys.stderr,
        )
        return 1
    print(f"The schema in code matches {contract}.")
    return 0


@contextlib.contextmanager
def _local_stack(settings: Settings) -> Iterator[Settings]:
    """Start the embedded backends for what the environment leaves unset."""
    from hemisphere.localstack import MotoServer, embedded_postgres
    from hemisphere.payments_sim import PaymentsSimulator

    with contextlib.ExitStack() as stack:
        if settings.database_url is None:
            print(
                f"Starting the embedded PostgreSQL (data in {settings.data_dir / 'postgres'}) ..."
            )
            url = stack.enter_context(embedded_postgres(settings.data_dir / "postgres"))
            settings = replace(settings, database_url=url)
        if settings.aws_endpoint_url is None:
            print("Starting the local AWS endpoint (moto server) ...")
            moto = stack.enter_context(MotoServer())
            key, secret = LOCAL_AWS_CREDENTIALS
            settings = replace(
                settings,
                aws_endpoint_url=moto.url,
                aws_access_key_id=settings.aws_access_key_id or key,
                aws_secret_access_key=settings.aws_secret_access_key or secret,
            )
        if settings.payments_url is None:
            print("Starting the simulated card provider ...")
            simulator = stack.enter_context(PaymentsSimulator())
            settings = replace(settings, payments_url=simulator.url)
        yield settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hemisphere.app import create_app
    from hemisphere.local_defaults import remove_stack_file, with_local_secrets, write_stack_file

    settings = _settings(args.data_dir)
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    # pgserver narrates every pg_ctl call at INFO; its warnings are all a user needs.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    # httpx logs every request at INFO: one line per change the stream publisher sends.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    generated_key = not settings.api_keys
    settings = with_local_secrets(settings)
    if settings.publish_url is None:
        # The change-stream publisher calls this very API, as a stream handler calls AppSync.
        host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
        settings = replace(settings, publish_url=f"http://{host}:{args.port}/graphql")
    with _local_stack(settings) as settings:
        write_stack_file(settings.data_dir, settings)
        servers: list[uvicorn.Server] = []  # the app's lifespan asks it whether it listens
        try:
            app = create_app(
                settings,
                runtime_factory=partial(
                    _serve_runtime,
                    banner=_banner(args, settings),
                    listening=lambda: bool(servers) and servers[0].started,
                ),
                graphiql_api_key=settings.api_keys[0] if generated_key else None,
            )
            config = uvicorn.Config(
                app,
                host=args.host,
                port=args.port,
                log_level="warning",
                lifespan="on",
                ws="websockets-sansio",
            )
            server = uvicorn.Server(config)
            servers.append(server)
            # server.run() picks uvicorn's event loop (uvloop when installed: +25% on small
            # requests); it shuts down gracefully on Ctrl-C, then re-raises it: a clean stop.
            with contextlib.suppress(KeyboardInterrupt):
                server.run()
            return 0 if server.started else 1
        finally:
            remove_stack_file(settings.data_dir)


def _banner(args: argparse.Namespace, settings: Settings) -> str:
    akid = next(iter(settings.iam_credentials))
    return "\n".join(
        [
            "",
            f"Hemisphere is serving region {settings.region} (primary: {settings.primary_region}).",
            f"  GraphiQL:   http://{args.host}:{args.port}/graphql",
            f"  API key:    {settings.api_keys[0]}   (header x-api-key)",
            f"  IAM:        {akid}:{settings.iam_credentials[akid]}   (SigV4, service appsync)",
            "Press Ctrl-C to stop.",
            "",
        ]
    )


@contextlib.asynccontextmanager
async def _serve_runtime(
    settings: Settings, *, banner: str, listening: Callable[[], bool]
) -> AsyncIterator[Runtime]:
    from tqdm import tqdm

    from hemisphere.bootstrap import start_runtime
    from hemisphere.runtime import StartupOptions

    bar: tqdm[None] | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="Rebuilding projections", unit="item")
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    options = StartupOptions(
        seed_demo_data=True, rebuild_projections=True, rebuild_progress=progress
    )
    async with start_runtime(settings, options) as runtime:
        if bar is not None:
            bar.close()
        # uvicorn binds its socket after the lifespan started: announce once it listens, so
        # whoever reads the banner can connect at once.
        announcing = asyncio.create_task(_announce(banner, listening))
        try:
            yield runtime
        finally:
            announcing.cancel()


async def _announce(banner: str, listening: Callable[[], bool]) -> None:
    while not listening():  # noqa: ASYNC110 - uvicorn offers no event for "listening"
        await asyncio.sleep(0.02)
    print(banner, flush=True)


def _worker(args: argparse.Namespace) -> int:
    settings = Settings.from_env(os.environ)
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    if settings.region != settings.primary_region:
        raise SettingsError("hemisphere worker runs in the primary region only")
    # The workers sign no pagination tokens; start_runtime wants a secret all the same.
    settings = replace(settings, run_workers=True, token_secret=settings.token_secret or "-")
    asyncio.run(_run_workers(settings))
    return 0


async def _run_workers(settings: Settings) -> None:
    import signal

    from hemisphere.bootstrap import start_runtime

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with start_runtime(settings):
        print(f"Hemisphere workers running in {settings.region}. Press Ctrl-C to stop.", flush=True)
        await stop.wait()


def _projections_rebuild(args: argparse.Namespace) -> int:
    from hemisphere.local_defaults import read_stack_file

    settings = _settings(args.data_dir)
    if settings.database_url is None or settings.aws_endpoint_url is None:
        running = read_stack_file(settings.data_dir)
        if running is None:
            raise SettingsError(
                "DATABASE_URL and AWS_ENDPOINT_URL are not set and no `hemisphere serve` is "
                f"running with data in {settings.data_dir}"
            )
        settings = Settings.from_env({**running, **os.environ})
    return asyncio.run(_rebuild(settings, fresh=args.fresh))


async def _rebuild(settings: Settings, *, fresh: bool) -> int:
    from tqdm import tqdm

    from adapters.dynamodb.client import create_client
    from adapters.dynamodb.table import delete_table, ensure_table
    from adapters.dynamodb.writer import DynamoProjectionWriter
    from adapters.postgres.pool import create_pool
    from adapters.postgres.snapshots import PostgresSnapshotSource
    from hemisphere.bootstrap import aws_credentials
    from projections.rebuild import rebuild

    assert settings.database_url is not None
    pool = await create_pool(settings.database_url, min_size=1, max_size=4)
    try:
        async with create_client(
            settings.aws_endpoint_url, settings.region, aws_credentials(settings)
        ) as client:
            if fresh:
                await delete_table(client, settings.table_name)
            await ensure_table(client, settings.table_name)
            writer = DynamoProjectionWriter(client, settings.table_name)
            with tqdm(desc="Rebuilding projections", unit="item") as bar:

                def progress(done: int, total: int) -> None:
                    bar.total = total
                    bar.update(done - bar.n)

                written = await rebuild(PostgresSnapshotSource(pool), writer, progress=progress)
    finally:
        await pool.close()
    print(f"Rebuilt the projections in table {settings.table_name}: {written} items written.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
