"""What the AWS_LAMBDA authorizer's deniedFields cost a read (issue #10): `product(id)` through
`schema.execute`, with the schema as it was before (graphql-core's executor), and with
DeniedFieldsExecutor (an API-key caller, and a Lambda caller whose denied field the query does
not select). Requests alternate between the variants so that machine load hits them alike;
the ratio is each variant's median over the baseline's, in the same run.

    .venv/bin/python bench/denied_fields.py [--rounds 6000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ shadows packages

from domain.auth import AuthMode, Caller
from hemisphere.http.lambda_authorizer_fields import DeniedFieldsExecutor
from resolvers.context import Context
from resolvers.schema import build_schema
from tests.support.app import TOKENS, fake_runtime
from tests.support.fakes import InMemoryReader, make_products

QUERY = """query P($id: ID!) { product(id: $id) { id sku name description category
  price { amount currency } available updatedAt version } }"""
BASELINE = "before (API key)"


async def main(rounds: int) -> None:
    runtime = fake_runtime(InMemoryReader(products=make_products(5)))
    before = build_schema()
    after = build_schema()
    after.execution_context_class = DeniedFieldsExecutor
    key = Caller(AuthMode.API_KEY, "da2-test")
    lambda_caller = Caller(
        AuthMode.AWS_LAMBDA, "lambda:x", denied_fields=frozenset({"Order.total"})
    )
    variants = {
        BASELINE: (before, key),
        "after (API key)": (after, key),
        "after (Lambda, a denied field not selected)": (after, lambda_caller),
    }

    def context(caller: Caller) -> Context:
        return Context(caller, runtime.ports, TOKENS)

    async def one(schema: object, caller: Caller) -> float:
        started = time.perf_counter()
        result = await schema.execute(  # type: ignore[attr-defined]
            QUERY, variable_values={"id": "p-0001"}, context_value=context(caller)
        )
        assert not result.errors, result.errors
        return time.perf_counter() - started

    for _ in range(300):  # warm-up
        for schema, caller in variants.values():
            await one(schema, caller)
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for i in range(rounds):
        for name in names[i % 3 :] + names[: i % 3]:
            times[name].append(await one(*variants[name]))
    baseline = statistics.median(times[BASELINE])
    print(f"{'variant':45s} {'median µs':>10s} {'ratio':>7s}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:45s} {median * 1e6:10.1f} {median / baseline:7.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6000)
    asyncio.run(main(parser.parse_args().rounds))
