"""What a hostile document costs now that limits are priced before validation (issue #10):
the refusal of an alias bomb and of an alias fan-out of large pages, against what
graphql-core's parse + validation of the same documents costs (the work done before any
limit existed), in the same run.

    .venv/bin/python bench/limits.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from graphql import parse, validate

# The repository first: bench/subscriptions.py would shadow the `subscriptions` package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resolvers.schema import build_schema
from schema import limits
from schema.limits import QueryLimits, check_limits


def median_ms(work: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        limits._parse.cache_clear()  # every request is a new document
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    schema = build_schema()._schema
    documents = {
        "10,000 aliases of region { epoch } (240 KB)": "{ "
        + " ".join(f"a{i}: region {{ epoch }}" for i in range(10_000))
        + " }",
        "200 aliases of products(limit: 100)": "{ "
        + " ".join(f"a{i}: products(limit: 100) {{ items {{ id name }} }}" for i in range(200))
        + " }",
    }
    print(f"{'document':48} {'refused in ms':>14} {'parse+validate ms':>18} {'ratio':>7}")
    for name, document in documents.items():
        refused = median_ms(
            lambda d=document: check_limits(schema, d, None, QueryLimits()), args.rounds
        )
        before = median_ms(lambda d=document: validate(schema, parse(d)), args.rounds)
        print(f"{name:48} {refused:14.1f} {before:18.1f} {before / refused:6.1f}x")


if __name__ == "__main__":
    main()
