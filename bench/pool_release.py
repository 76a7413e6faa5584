"""What a pooled connection's release costs: asyncpg's default reset (a query sent on every
release: pg_advisory_unlock_all, CLOSE ALL, UNLISTEN *, RESET ALL) against the pool's own
(adapters.postgres.pool.keep_session: nothing sent), in one run.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/pool_release.py [--cycles 5000] [--rounds 3]

A cycle is what every pooled statement outside a transaction does (the checkout's intent, a
saga step's transaction without its statements): acquire, one `SELECT 1`, release. One pool
of one connection per side, sequential, on uvloop as the API runs; the sides take turns in
each round. Prints per cycle the wall time and this process's CPU (the client's), and the
ratio keep_session / default.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.postgres.pool import keep_session

Reset = Callable[["asyncpg.Connection[Any]"], Awaitable[None]] | None


async def cycles(dsn: str, reset: Reset, count: int) -> tuple[float, float]:
    """(wall µs, client CPU µs) per acquire + SELECT 1 + release, after a warm-up."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1, reset=reset)
    try:
        for _ in range(200):
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
        return (
            (time.perf_counter() - wall) / count * 1e6,
            (time.process_time() - cpu) / count * 1e6,
        )
    finally:
        await pool.close()


async def main(args: argparse.Namespace) -> None:
    dsn = os.environ.get("DATABASE_URL")
    if not dsn:
        raise SystemExit("set DATABASE_URL (a PostgreSQL the bench may connect to)")
    sides: dict[str, Reset] = {"default reset": None, "keep_session": keep_session}
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for round_ in range(1, args.rounds + 1):
        for name, reset in sides.items():
            wall, cpu = await cycles(dsn, reset, args.cycles)
            figures[name].append((wall, cpu))
            print(f"round {round_}  {name:14s} {wall:6.0f} µs wall  {cpu:5.0f} µs client CPU")
    print(f"\nmedian of {args.rounds} rounds of {args.cycles} cycles (acquire, SELECT 1, release)")
    medians = {
        name: (statistics.median(w for w, _ in f), statistics.median(c for _, c in f))
        for name, f in figures.items()
    }
    for name, (wall, cpu) in medians.items():
        print(f"  {name:14s} {wall:6.0f} µs wall  {cpu:5.0f} µs client CPU")
    (base_wall, base_cpu), (wall, cpu) = medians["default reset"], medians["keep_session"]
    print(
        f"  keep_session / default: wall {wall / base_wall:.2f}x, client CPU {cpu / base_cpu:.2f}x"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    uvloop.run(main(parser.parse_args()))
