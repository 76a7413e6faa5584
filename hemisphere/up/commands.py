"""`hemisphere up` (every region on this machine) and `hemisphere regions …` (talk to it)."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from hemisphere.settings import SettingsError
from hemisphere.up.layout import DEFAULT_REGIONS, read_topology

DEFAULT_DATA_DIR = Path(".hemisphere-global")
# A promotion or a region's return waits for processes to start: minutes at worst on a busy
# machine, never forever.
ACTION_TIMEOUT_SECONDS = 300.0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = commands.add_parser("up", help="run every region of the global topology on this machine")
    up.add_argument(
        "--regions",
        default=",".join(DEFAULT_REGIONS),
        help="comma-separated regions, one user location each (default %(default)s)",
    )
    up.add_argument(
        "--primary",
        default=None,
        help="the primary region at the first start (default us-east-1, or the first region; "
        "later starts keep the primary the data dir records, promotions included)",
    )
    up.add_argument(
        "--latency", default="global", help="none, global or a JSON FILE (default %(default)s)"
    )
    up.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    up.add_argument("--base-port", type=int, default=8000)
    up.add_argument(
        "--auto-promote-after",
        type=float,
        default=None,
        metavar="SECONDS",
        help="promote the nearest healthy secondary when the primary stays unhealthy that long",
    )
    up.set_defaults(run=_up)

    regions = commands.add_parser("regions", help="status and control of a running `up`")
    verbs = regions.add_subparsers(title="regions commands")
    status = verbs.add_parser("status", help="role, epoch, health and lags of every region")
    status.add_argument("--json", action="store_true", help="the control endpoint's JSON")
    status.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    status.set_defaults(run=_status)
    for verb, text in (
        ("stop", "a hard outage: SIGKILL of every process of REGION, PostgreSQL included"),
        ("start", "REGION comes back and resynchronizes as a secondary"),
        ("promote", "fenced promotion of REGION to primary; returns once it accepts writes"),
    ):
        action = verbs.add_parser(verb, help=text)
        action.add_argument("region", metavar="REGION")
        action.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
        action.set_defaults(run=_action, verb=verb)


def _up(args: argparse.Namespace) -> int:
    from hemisphere.up.orchestrator import UpOptions, run_up

    names = [name.strip() for name in args.regions.split(",") if name.strip()]
    options = UpOptions(
        regions=names,
        primary=args.primary,
        latency=args.latency,
        data_dir=args.data_dir,
        base_port=args.base_port,
        auto_promote_after=args.auto_promote_after,
    )
    return run_up(options)


def _control_url(data_dir: Path) -> str:
    topology = read_topology(data_dir)
    if topology is None or "control" not in topology:
        raise SettingsError(f"no `hemisphere up` is running with data in {data_dir}")
    return str(topology["control"])


def _call(data_dir: Path, method: str, path: str) -> dict[str, Any]:
    url = _control_url(data_dir) + path
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=ACTION_TIMEOUT_SECONDS) as answer:
            body: dict[str, Any] = json.loads(answer.read())
            return body
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read()).get("error", error.reason)
        except ValueError:
            message = error.reason
        raise SettingsError(f"{method} {path}: {message}") from None
    except (urllib.error.URLError, OSError) as error:
        raise SettingsError(
            f"the control endpoint {url} does not answer ({error}); is `hemisphere up` running "
            f"with data in {data_dir}?"
        ) from None


def _status(args: argparse.Namespace) -> int:
    status = _call(args.data_dir, "GET", "/status")
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(format_status(status))
    return 0


def _action(args: argparse.Namespace) -> int:
    result = _call(args.data_dir, "POST", f"/regions/{args.region}/{args.verb}")
    message = result.get("message")
    print(message if message else json.dumps(result, indent=2))
    return 0


def format_status(status: dict[str, Any]) -> str:
    header = ("REGION", "ROLE", "EPOCH", "HEALTH", "DDB LAG ms", "PG LAG ms", "SUBS", "SAGAS")
    rows = [header]
    for name, region in status["regions"].items():
        lags = region.get("dynamodb_replication_lag_ms") or {}
        ddb = ", ".join(f"{other} {_number(ms)}" for other, ms in sorted(lags.items())) or "-"
        rows.append(
            (
                name,
                str(region.get("role")),
                _number(region.get("epoch")),
                str(region.get("health")),
                ddb,
                _number(region.get("postgres_replay_lag_ms")),
                _number(region.get("subscriptions")),
                _number(region.get("in_flight_sagas")),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [f"Primary: {status.get('primary')}   epoch: {status.get('epoch')}"]
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return "\n".join(lines)


def _number(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}"
    return str(value)
