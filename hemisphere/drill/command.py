"""The `hemisphere drill` command: arguments, the run, the printed report, --json, --plot."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hemisphere.drill.control import ControlClient
    from hemisphere.drill.report import Report
    from hemisphere.drill.runner import DrillOptions, DrillRun
    from hemisphere.drill.tokens import CustomerTokens
    from hemisphere.drill.topology import Topology
    from regions.latency import LatencyMatrix

DEFAULT_DATA_DIR = Path(".hemisphere-global")
SCENARIOS = ("secondary-loss", "primary-loss", "both")


class DrillUsageError(Exception):
    pass


def register(commands: Any) -> None:
    """Adds `drill` to the CLI's subcommands (hemisphere/cli.py `_parser()`)."""
    drill = commands.add_parser(
        "drill",
        help="simulated users in every location of a running `hemisphere up`; kill a region, "
        "recover it, print the timeline, RTO, RPO and latency per phase",
    )
    drill.add_argument("--scenario", required=True, choices=SCENARIOS)
    drill.add_argument("--users", type=int, default=2, help="readers per location (default 2)")
    drill.add_argument(
        "--duration",
        type=float,
        default=20.0,
        help="seconds of each steady stretch: before the kill, degraded, after (default 20)",
    )
    drill.add_argument(
        "--warmup",
        type=float,
        default=10.0,
        help="seconds of load before the first steady stretch is measured (default 10)",
    )
    drill.add_argument(
        "--checkout-interval",
        type=float,
        default=3.0,
        help="seconds between checkouts in each location (default 3: one a second in all, a "
        "steady load the primary's local AWS endpoint keeps up with on two cores)",
    )
    drill.add_argument(
        "--secondary",
        help="the secondary secondary-loss kills (default: the one farthest from the primary)",
    )
    drill.add_argument(
        "--promote-after",
        type=float,
        default=None,
        help="primary-loss: promote this many seconds after the kill (default: as soon as "
        "every location has seen ReadOnlyRegion)",
    )
    drill.add_argument(
        "--latency",
        default=None,
        help="the latency matrix `up` runs with (preset or FILE), if topology.json lacks it",
    )
    drill.add_argument("--json", type=Path, default=None, help="write the whole report here")
    drill.add_argument("--plot", type=Path, default=None, help="draw read latency to this PNG")
    drill.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="the running `hemisphere up`'s data directory (default .hemisphere-global)",
    )
    drill.set_defaults(run=run_command)


def run_command(args: argparse.Namespace) -> int:
    from hemisphere.drill.control import ControlError
    from hemisphere.drill.tokens import NoIssuerError
    from hemisphere.drill.topology import TopologyError
    from regions.network_priority import run_as_network

    run_as_network()  # the simulated users stand for their own devices
    try:
        return asyncio.run(_drill(args))
    except (TopologyError, ControlError, DrillUsageError, NoIssuerError) as error:
        print(f"hemisphere drill: {error}", file=sys.stderr)
        return 2


def _options(args: argparse.Namespace, regions: list[str], primary: str) -> DrillOptions:
    from hemisphere.drill.runner import DrillOptions

    if args.users < 1:
        raise DrillUsageError("--users must be at least 1")
    if args.duration <= 0 or args.checkout_interval <= 0:
        raise DrillUsageError("--duration and --checkout-interval must be positive")
    if args.secondary is not None and (args.secondary not in regions or args.secondary == primary):
        raise DrillUsageError(
            f"--secondary {args.secondary}: not a secondary of this topology "
            f"(regions {', '.join(regions)}, primary {primary})"
        )
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise DrillUsageError(f"--plot {args.plot}: give a .png path")
    for path in (args.json, args.plot):
        if path is not None and not path.resolve().parent.is_dir():
            raise DrillUsageError(f"{path}: its directory does not exist")
    return DrillOptions(
        scenario=args.scenario,
        users=args.users,
        duration=args.duration,
        warmup=args.warmup,
        checkout_interval=args.checkout_interval,
        secondary=args.secondary,
        promote_after=args.promote_after,
    )


async def _drill(args: argparse.Namespace) -> int:
    from hemisphere.drill.control import ControlClient
    from hemisphere.drill.tokens import customer_tokens
    from hemisphere.drill.topology import load_topology

    topology = load_topology(args.data_dir, args.latency)
    tokens = customer_tokens(args.data_dir)
    options = _options(args, list(topology.regions), topology.primary)
    async with ControlClient(topology.control) as control:
        report, run = await drill(topology, options, control, tokens)
    finish(report, run, topology.latency, json_path=args.json, plot_path=args.plot)
    return 0


async def drill(
    topology: Topology, options: DrillOptions, control: ControlClient, tokens: CustomerTokens
) -> tuple[Report, DrillRun]:
    """Runs the drill and builds its report (bench/global.py calls this too)."""
    from dataclasses import asdict

    from hemisphere.drill.report import build_report
    from hemisphere.drill.runner import Drill

    run = await Drill(topology, options, control, tokens, log=_print).run()
    report = build_report(
        run.observations,
        run.baseline,
        run.direct,
        topology.latency,
        options.scenario,
        asdict(options),
    )
    return report, run


def _print(line: str) -> None:
    print(line, flush=True)


def finish(
    report: Report,
    run: DrillRun,
    matrix: LatencyMatrix,
    *,
    json_path: Path | None,
    plot_path: Path | None,
) -> None:
    """Prints the report and the figures; writes the JSON and the plot when asked."""
    from hemisphere.drill.dump import observations_json
    from hemisphere.drill.figures import figures, figures_json, format_figures
    from hemisphere.drill.render import format_report

    measured = figures(report, matrix)
    print()
    print(format_report(report), end="")
    print()
    print(format_figures(measured), end="")
    if json_path is not None:
        document = {
            **report.to_json(),
            "figures": figures_json(measured),
            "observations": observations_json(run.observations),
        }
        json_path.write_text(json.dumps(document, indent=2) + "\n")
        print(f"\nReport written to {json_path}")
    if plot_path is not None:
        from hemisphere.drill.plot import plot_reads

        plot_reads(run.observations, report.events, plot_path)
        print(f"Plot written to {plot_path}")
