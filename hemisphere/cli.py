"""`hemisphere`: serve the API, export the AppSync schema, rebuild the projections."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from pathlib import Path

from hemisphere.settings import Settings, SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    from domain.errors import BackendUnavailableError
    from hemisphere.embedded_postgres import EmbeddedPostgresError
    from hemisphere.roles.serving import Interrupted, StartupError

    try:
        return int(args.run(args))
    except SettingsError as exc:
        print(f"hemisphere: {exc}", file=sys.stderr)
        return 2
    except (StartupError, BackendUnavailableError, EmbeddedPostgresError) as exc:
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
    from hemisphere.roles.publisher import register as register_publisher
    from hemisphere.roles.serve import register as register_serve
    from hemisphere.roles.worker import register as register_worker

    register_serve(commands)
    register_api(commands)
    register_worker(commands)
    register_publisher(commands)
    from hemisphere.drill import register as register_drill

    register_drill(commands)
    from hemisphere.up import register as register_up

    register_up(commands)
    from hemisphere.appsync_export import register as register_export

    register_export(commands)
    from hemisphere.token_cli import register as register_token

    register_token(commands)
    return parser


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


def _projections_rebuild(args: argparse.Namespace) -> int:
    from hemisphere.local_defaults import read_stack_file
    from hemisphere.roles.serve import settings_for

    settings = settings_for(args.data_dir)
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

    from adapters.dynamodb.writer import DynamoProjectionWriter
    from hemisphere.bootstrap import open_pool, open_projection_table, rebuild_projections

    async with contextlib.AsyncExitStack() as stack:
        pool = await open_pool(stack, settings, min_size=1, max_size=4)
        client = await open_projection_table(stack, settings, fresh=fresh)
        writer = DynamoProjectionWriter(client, settings.table_name)
        with tqdm(desc="Rebuilding projections", unit="item") as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            written = await rebuild_projections(pool, writer, progress)
    print(f"Rebuilt the projections in table {settings.table_name}: {written} items written.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
