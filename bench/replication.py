"""Replication lag of the global table stand-in, with no injected latency.

    .venv/bin/python bench/replication.py [--regions 3] [--writes 300] [--rate 50]
        [--status-port 26100] [--json OUT]

One local AWS endpoint (moto server) per region and one `hemisphere replicator` process per
region, as `hemisphere up` runs them (here without delay proxies: the `none` preset). This
client writes --writes versioned items into the first region at --rate per second (a third of
them updates of earlier items, as a saga's steps rewrite an order) and reads each replicator's
lag from its status endpoint: the time from the change in the source (its stream record) to
its conditional write in the target.

Baseline, measured in the same run: a PutItem from this client straight to a target's
endpoint (what one replicated write costs without the stream, the poll and the condition).
The ratio says what the stand-in adds; its floor is the poll interval (50 ms between reads of
a shard that had nothing new).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from adapters.dynamodb.client import StaticCredentials, create_client  # noqa: E402
from adapters.dynamodb.table import ensure_table  # noqa: E402
from hemisphere.localstack import MotoServer  # noqa: E402

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
LOCAL = StaticCredentials("hemisphere-local", "hemisphere-local")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def status(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as answer:
        result: dict[str, Any] = json.loads(answer.read())
        return result


async def baseline(endpoint: str, region: str, table: str, count: int) -> list[float]:
    """Direct PutItem round trips to a target, in ms."""
    took = []
    async with create_client(endpoint, region, LOCAL) as client:
        for n in range(count):
            started = time.perf_counter()
            await client.put_item(
                TableName=table,
                Item={
                    "pk": {"S": f"BASELINE#{n}"},
                    "sk": {"S": "A"},
                    "kind": {"S": "Baseline"},
                },
            )
            took.append((time.perf_counter() - started) * 1000)
    return took


async def load(endpoint: str, region: str, table: str, writes: int, rate: float) -> None:
    versions: dict[str, int] = {}
    async with create_client(endpoint, region, LOCAL) as client:
        started = time.monotonic()
        for n in range(writes):
            if versions and random.random() < 1 / 3:
                key = random.choice(list(versions))
            else:
                key = f"ORDER#{uuid.uuid4().hex[:12]}"
            versions[key] = versions.get(key, 0) + 1
            await client.put_item(
                TableName=table,
                Item={
                    "pk": {"S": key},
                    "sk": {"S": "A"},
                    "kind": {"S": "Order"},
                    "version": {"N": str(versions[key])},
                    "status": {"S": "PENDING"},
                },
            )
            # Steady: the n-th write at n / rate seconds.
            delay = started + (n + 1) / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)


async def wait_caught_up(ports: list[int], expected: int, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        targets = status(ports[0])["targets"]
        if all(t["sent"] >= expected and t["pending_ms"] is None for t in targets.values()):
            return
        await asyncio.sleep(0.2)
    raise TimeoutError("the replicators did not catch up")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", type=int, default=3, choices=(2, 3))
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--status-port", type=int, default=26100)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    regions = REGIONS[: args.regions]
    table = f"bench-replication-{uuid.uuid4().hex[:8]}"
    ports = [args.status_port + i for i in range(len(regions))]

    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(MotoServer()) for _ in regions]
        endpoints = dict(zip(regions, (server.url for server in servers), strict=True))

        async def create_tables() -> None:
            for region, endpoint in endpoints.items():
                async with create_client(endpoint, region, LOCAL) as client:
                    await ensure_table(client, table)

        asyncio.run(create_tables())
        processes = []
        for region, port in zip(regions, ports, strict=True):
            env = {
                **os.environ,
                "HEMISPHERE_REGION": region,
                "AWS_ENDPOINT_URL": endpoints[region],
                "HEMISPHERE_REPLICA_ENDPOINTS": ",".join(
                    f"{other}={url}" for other, url in endpoints.items() if other != region
                ),
                "HEMISPHERE_TABLE": table,
                "AWS_ACCESS_KEY_ID": LOCAL.access_key_id,
                "AWS_SECRET_ACCESS_KEY": LOCAL.secret_access_key,
                "HEMISPHERE_REPLICATOR_STATUS_PORT": str(port),
                "HEMISPHERE_LOG_LEVEL": "WARNING",
            }
            process = subprocess.Popen(
                [sys.executable, "-m", "hemisphere.cli", "replicator"], env=env
            )
            stack.callback(process.wait, 10)
            stack.callback(process.terminate)
            processes.append(process)
        for port in ports:
            for _ in range(100):
                with contextlib.suppress(OSError):
                    if all(t["state"] == "replicating" for t in status(port)["targets"].values()):
                        break
                time.sleep(0.1)

        source, *targets = regions
        direct = asyncio.run(baseline(endpoints[targets[0]], targets[0], table, 200))
        asyncio.run(load(endpoints[source], source, table, args.writes, args.rate))
        asyncio.run(wait_caught_up(ports, 1))
        time.sleep(1.0)
        report = status(ports[0])

    direct_p50, direct_p99 = statistics.median(direct), percentile(direct, 99)
    print(
        f"\nReplication lag from {source}, {args.writes} writes at {args.rate:g}/s, "
        "latency preset none (ms)"
    )
    print(
        f"{'target':<16}{'changes':>9}{'p50':>9}{'p99':>9}{'max':>9}{'p50/put':>10}{'p99/put':>10}"
    )
    figures: dict[str, Any] = {"baseline_put_ms": {"p50": direct_p50, "p99": direct_p99}}
    for target, data in report["targets"].items():
        lag = data["lag_ms"]
        figures[target] = lag
        print(
            f"{target:<16}{lag['samples']:>9}{lag['p50']:>9.1f}{lag['p99']:>9.1f}{lag['max']:>9.1f}"
            f"{lag['p50'] / direct_p50:>9.1f}x{lag['p99'] / direct_p99:>9.1f}x"
        )
    print(f"{'baseline PutItem':<16}{len(direct):>9}{direct_p50:>9.1f}{direct_p99:>9.1f}")
    print(
        "(lag: stream record → conditional write in the target, by the replicator; "
        "baseline: one PutItem straight to the target from this client)"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
