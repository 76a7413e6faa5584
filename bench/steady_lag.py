"""Replication lag of a running `hemisphere up` under a steady checkout load and nothing else.

    .venv/bin/python bench/steady_lag.py --data-dir .hemisphere-global [--rate 1] [--seconds 45]

One customer (c-0001, with its token) places `--rate` checkouts a second in the primary region
for `--seconds`; then the primary's replicator status is read once: per target, the p50 and
the p99 of the last 30 s of its lag (change in the source → write in the target) and of its
read lag (change → the read that found it), with the target of each (one-way latency of the
link + 100 ms). The drill (`bench/global.py`) measures the same pipelines with readers,
subscribers and region losses beside them; this is the floor they start from.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hemisphere.drill.graphql import client, execute
from hemisphere.drill.tokens import customer_tokens
from hemisphere.drill.topology import Topology, load_topology
from hemisphere.drill.users import CHECKOUT, PRODUCTS
from hemisphere.up.layout import PORTS_PER_REGION

CUSTOMER = "c-0001"


@dataclass
class Answers:
    placed: int = 0
    refused: dict[str, int] = field(default_factory=dict)

    def count(self, error: str | None) -> None:
        if error is None:
            self.placed += 1
        else:
            self.refused[error] = self.refused.get(error, 0) + 1


async def checkouts(topology: Topology, data_dir: Path, rate: float, seconds: float) -> Answers:
    """One customer's checkouts into the primary, sent as the drill's shoppers send them."""
    url = topology.regions[topology.primary].graphql
    headers = customer_tokens(data_dir).headers(CUSTOMER)
    answers = Answers()
    async with client(topology.api_key) as http:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            began = time.monotonic()
            order = {
                "customerId": CUSTOMER,
                "lines": [{"productId": random.choice(PRODUCTS), "quantity": 1}],
                "paymentToken": "tok_visa",
                "idempotencyKey": str(uuid.uuid4()),
            }
            answer = await execute(http, url, CHECKOUT, {"input": order}, headers)
            answers.count(answer.error)
            await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - began)))
    return answers


def replicator_status(api_url: str) -> dict[str, Any]:
    """The region's replicator status: `up` puts its port last in the region's block of
    ports, whose second is the API's (hemisphere/up/layout.py)."""
    first = (urlsplit(api_url).port or 0) - 1
    port = first + PORTS_PER_REGION - 1
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as answer:
        status: dict[str, Any] = json.loads(answer.read())
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(".hemisphere-global"))
    parser.add_argument("--rate", type=float, default=1.0, help="checkouts a second (1)")
    parser.add_argument("--seconds", type=float, default=45.0, help="how long (45)")
    args = parser.parse_args()
    topology = load_topology(args.data_dir)
    primary = topology.primary
    url = topology.regions[primary].graphql
    print(f"# {args.rate:g} checkouts/s into {primary} for {args.seconds:g} s ...", flush=True)
    answers = asyncio.run(checkouts(topology, args.data_dir, args.rate, args.seconds))
    print(f"# {answers.placed} checkouts answered; refused: {answers.refused or 'none'}")
    targets = replicator_status(url)["targets"]
    widths = (34, 8, 10, 7, 9, 6)
    header = ("link", "lag p50", "p99 (30 s)", "target", "read p50", "p99")
    print(
        " ".join(
            f"{h:<{w}}" if i == 0 else f"{h:>{w}}"
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    for region, pipeline in targets.items():
        lag, read = pipeline["lag_ms"], pipeline["read_lag_ms"]
        target = topology.latency.one_way_seconds(primary, region) * 1000 + 100
        link = f"{primary} -> {region}"
        print(
            f"{link:<34} {lag['p50'] or 0:>8.0f} {lag['recent_p99'] or 0:>10.0f} "
            f"{target:>7.0f} {read['p50'] or 0:>9.0f} {read['recent_p99'] or 0:>6.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
