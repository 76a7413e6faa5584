"""Issue 7's "Figures to reach", measured in one run of the drill (`--scenario both`).

    .venv/bin/python bench/global.py [--data-dir /tmp/hemisphere-bench-global]
        [--base-port 28000] [--duration 15] [--users 2] [--json OUT] [--plot OUT.png] [--keep]

Uses the `hemisphere up` already running in --data-dir when its control endpoint answers;
otherwise starts one there (`--latency global`, the given --base-port), waits until every region
reports healthy, and stops it at the end (unless --keep). Then `hemisphere drill --scenario
both`: simulated users in every location, a secondary killed and restarted, the primary killed,
the nearest secondary promoted, the old primary restarted; it prints the drill's report and the
figures, each with its target and the ratio measured ÷ target. The baseline a ratio compares
with is measured in the same run (the single-region reads, each region's service time).

About three to four minutes on two cores with the defaults (most of it `up` starting).
See bench/README.md for how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from hemisphere.drill.command import drill, finish
from hemisphere.drill.control import ControlClient, ControlError
from hemisphere.drill.report import Report
from hemisphere.drill.runner import DrillOptions, DrillRun
from hemisphere.drill.tokens import CustomerTokens, customer_tokens
from hemisphere.drill.topology import TOPOLOGY_FILE, Topology, load_topology
from hemisphere.localstack import spawn, stop_process
from regions.network_priority import run_as_network

REPO = Path(__file__).resolve().parent.parent

UP_TIMEOUT_S = 300.0
UP_STOP_TIMEOUT_S = 60.0
SETTLED_LAG_MS = 1000.0
SETTLE_TIMEOUT_S = 120.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/hemisphere-bench-global"))
    parser.add_argument("--base-port", type=int, default=28000)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--users", type=int, default=2)
    parser.add_argument("--checkout-interval", type=float, default=3.0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="leave `hemisphere up` running")
    args = parser.parse_args()

    up = None if asyncio.run(_answers(args.data_dir)) else _start_up(args.data_dir, args.base_port)
    # The drill's users run here: they stand for their own devices, as in `hemisphere drill`
    # (after `up` was started: its processes must not inherit the priority).
    run_as_network()
    try:
        topology = load_topology(args.data_dir)
        asyncio.run(_wait_healthy(topology))
        asyncio.run(_wait_replication_settled(topology))
        options = DrillOptions(
            scenario="both",
            users=args.users,
            duration=args.duration,
            checkout_interval=args.checkout_interval,
        )
        started = time.monotonic()
        # The drill's users act as customers with tokens of the issuer `up` keeps here.
        tokens = customer_tokens(args.data_dir)
        report, run = asyncio.run(_drill(topology, options, tokens))
        finish(report, run, topology.latency, json_path=args.json, plot_path=args.plot)
        print(f"\nDrill: {time.monotonic() - started:.0f} s")
    finally:
        if up is not None and not args.keep:
            print("Stopping hemisphere up ...", flush=True)
            stop_process(up, UP_STOP_TIMEOUT_S, stop_signal=signal.SIGINT)
    return 0


async def _answers(data_dir: Path) -> bool:
    if not (data_dir / TOPOLOGY_FILE).is_file():
        return False
    try:
        async with ControlClient(load_topology(data_dir).control) as control:
            await control.status()
        return True
    except ControlError:
        return False


def _start_up(data_dir: Path, base_port: int) -> subprocess.Popen[bytes]:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / TOPOLOGY_FILE).unlink(missing_ok=True)  # a stale one from an earlier run
    log = data_dir / "bench-up.log"
    command = [
        sys.executable, "-m", "hemisphere.cli", "up", "--data-dir", str(data_dir),
        "--base-port", str(base_port), "--latency", "global",
    ]  # fmt: skip
    print(f"Starting hemisphere up in {data_dir} (log {log}) ...", flush=True)
    with log.open("ab") as output:
        up = spawn(command, cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
    began = time.monotonic()
    while not (data_dir / TOPOLOGY_FILE).is_file() or not asyncio.run(_answers(data_dir)):
        if up.poll() is not None:
            raise SystemExit(f"hemisphere up exited ({up.returncode}); see {log}")
        if time.monotonic() - began > UP_TIMEOUT_S:
            stop_process(up, UP_STOP_TIMEOUT_S, stop_signal=signal.SIGINT)
            raise SystemExit(f"hemisphere up did not answer within {UP_TIMEOUT_S:.0f} s; see {log}")
        time.sleep(1.0)
    print(f"hemisphere up answers after {time.monotonic() - began:.0f} s", flush=True)
    return up


async def _wait_healthy(topology: Topology) -> None:
    began = time.monotonic()
    async with ControlClient(topology.control) as control:
        while True:
            status = await control.status()
            regions = status.get("regions") or {}
            unhealthy = [
                r for r in topology.regions if regions.get(r, {}).get("health") != "healthy"
            ]
            if not unhealthy:
                print(f"every region healthy after {time.monotonic() - began:.0f} s", flush=True)
                return
            if time.monotonic() - began > UP_TIMEOUT_S:
                raise SystemExit(f"not healthy within {UP_TIMEOUT_S:.0f} s: {json.dumps(regions)}")
            await asyncio.sleep(1.0)


async def _wait_replication_settled(topology: Topology) -> None:
    """Until every pair's DynamoDB replication lag in `/status` (the oldest change on its way,
    else the p99 of the last 30 s) is under SETTLED_LAG_MS, three polls in a row. A fresh
    `up` replicates its seeded catalog and projections to every region first: across a
    200 ms link on a busy machine that backlog takes tens of seconds, the first changes of the
    drill queue behind it (a lag of 4.3 s once), and the 30 s window keeps it in the `before`
    phase's figure, which is about a steady checkout load. The bound is 5-10x the targets:
    this waits for the start-up's backlog to leave, not for a good figure."""
    began, settled = time.monotonic(), 0
    async with ControlClient(topology.control) as control:
        while settled < 3:
            status = await control.status()
            lags = [
                lag
                for region in (status.get("regions") or {}).values()
                for lag in (region.get("dynamodb_replication_lag_ms") or {}).values()
                if lag is not None
            ]
            settled = settled + 1 if all(lag < SETTLED_LAG_MS for lag in lags) else 0
            if time.monotonic() - began > SETTLE_TIMEOUT_S:
                print(f"replication not settled after {SETTLE_TIMEOUT_S:.0f} s: going on")
                return
            await asyncio.sleep(1.0)
    print(f"replication settled after {time.monotonic() - began:.0f} s", flush=True)


async def _drill(
    topology: Topology, options: DrillOptions, tokens: CustomerTokens
) -> tuple[Report, DrillRun]:
    async with ControlClient(topology.control) as control:
        return await drill(topology, options, control, tokens)


if __name__ == "__main__":
    sys.exit(main())
