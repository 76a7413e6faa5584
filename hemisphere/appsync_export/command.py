"""The `hemisphere export appsync` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DEFAULT_REGIONS = "us-east-1,eu-west-1,ap-southeast-2"


def add_export_command(commands: argparse._SubParsersAction[Any]) -> None:
    export = commands.add_parser("export", help="the contract as a deployable AWS API")
    targets = export.add_subparsers(title="export targets")
    appsync = targets.add_parser(
        "appsync",
        help="write the AppSync SDL, APPSYNC_JS resolvers and CloudFormation templates",
    )
    appsync.add_argument("--out", type=Path, required=True, help="the folder to write into")
    appsync.add_argument(
        "--regions",
        default=DEFAULT_REGIONS,
        help=f"the regions of the global table and latency routing (default {DEFAULT_REGIONS})",
    )
    appsync.add_argument(
        "--primary", default=None, help="the region that takes writes (default: the first)"
    )
    appsync.set_defaults(run=_export_appsync)


def _export_appsync(args: argparse.Namespace) -> int:
    from hemisphere.appsync_export.export import Topology, write_export
    from resolvers.schema import build_schema
    from schema.export import export_sdl

    regions = tuple(region.strip() for region in args.regions.split(",") if region.strip())
    try:
        topology = Topology(regions, args.primary or (regions[0] if regions else ""))
    except ValueError as error:
        print(f"hemisphere export appsync: {error}", file=sys.stderr)
        return 2
    if args.out.exists() and not args.out.is_dir():
        print(f"hemisphere export appsync: {args.out} is not a folder", file=sys.stderr)
        return 2
    written = write_export(args.out, export_sdl(build_schema()), topology)
    print(f"Wrote {len(written)} files to {args.out}:")
    for path in written:
        print(f"  {path.relative_to(args.out)}")
    return 0
