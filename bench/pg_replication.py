"""PostgreSQL replication of the Aurora global database stand-in (hemisphere.pgcluster).

    .venv/bin/python bench/pg_replication.py [--one-way-ms 37.5] [--probes 40] [--load-tps 100]
        [--load-seconds 6] [--lost-rows 500] [--json OUT]

A primary and two streaming replicas on free ports in a temporary directory: one replica
straight on the primary (the baseline: the same machine, no network), one through a delay
proxy (regions/delay_proxy.py) adding `--one-way-ms` each way (default 37.5 ms: the
us-east-1↔eu-west-1 RTT of the `global` preset is 75 ms). Prints:

1. time to create the primary (initdb) and to base-backup each replica;
2. commit → visible on each replica (a row inserted on the primary, polled for on the
   replica every ~2 ms): p50/p99 at idle (one probe every 100 ms) and under a write load
   (`--load-tps` single-row transactions per second in the background), and the ratio of the
   delayed replica's p50 to the one-way delay (1.0 would be the link alone);
3. pg_stat_replication's replay_lag of each replica, sampled every 100 ms under the load
   (the primary measures it: WAL out and the replica's reply back, so its floor is the RTT);
4. promotion of the delayed replica (pg_promote() to the first accepted write), the other
   replica following it, and the old primary rejoining with pg_rewind after `--lost-rows`
   rows it wrote while cut off (their count as reported lost, the rewind's seconds).

Every server and the proxy are children of this process and are stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hemisphere.localstack import free_port
from hemisphere.pgcluster import (
    PgNode,
    PrimaryStatus,
    follow,
    init_primary,
    kill,
    make_replica,
    promote,
    rejoin,
    replication_status,
)
from hemisphere.pgcluster.node import LOCALHOST, conninfo, query, quote_literal


@contextlib.contextmanager
def delay_proxy(target_port: int, one_way_ms: float, workdir: Path) -> Iterator[int]:
    port = free_port()
    spec = workdir / "proxies.json"
    spec.write_text(
        json.dumps(
            [
                {
                    "name": "pg primary→replica",
                    "listen": f"{LOCALHOST}:{port}",
                    "target": f"{LOCALHOST}:{target_port}",
                    "one_way_ms": one_way_ms,
                }
            ]
        )
    )
    proxy = subprocess.Popen(
        [sys.executable, "-m", "regions.delay_proxy", "--spec", str(spec)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert proxy.stdout is not None
        line = proxy.stdout.readline()
        if "ready" not in line:
            raise RuntimeError(f"the delay proxy did not start: {line!r}")
        yield port
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")
    )


async def visibility_ms(
    primary: PgNode, replicas: list[PgNode], probes: int
) -> dict[str, list[float]]:
    """Commit on the primary → row visible on each replica, one probe every 100 ms."""
    writer = await asyncpg.connect(primary.url())
    readers = {r.name: await asyncpg.connect(r.url()) for r in replicas}
    seen: dict[str, list[float]] = {r.name: [] for r in replicas}
    try:
        for n in range(probes):
            probe = f"p{time.monotonic_ns()}-{n}"
            await writer.execute("INSERT INTO probe (id) VALUES ($1)", probe)
            committed = time.perf_counter()
            for name, reader in readers.items():
                # Polling is the measurement here: the replica has nothing to notify us with.
                while not await reader.fetchval("SELECT 1 FROM probe WHERE id = $1", probe):  # noqa: ASYNC110
                    await asyncio.sleep(0.002)
                seen[name].append((time.perf_counter() - committed) * 1000)
            await asyncio.sleep(0.1)
    finally:
        await writer.close()
        for reader in readers.values():
            await reader.close()
    return seen


async def write_load(primary: PgNode, tps: float, stop: asyncio.Event) -> int:
    conn = await asyncpg.connect(primary.url())
    done = 0
    try:
        while not stop.is_set():
            began = time.perf_counter()
            await conn.execute("INSERT INTO load (payload) VALUES (repeat('x', 200))")
            done += 1
            await asyncio.sleep(max(0.0, 1 / tps - (time.perf_counter() - began)))
    finally:
        await conn.close()
    return done


async def under_load(
    primary: PgNode, replicas: list[PgNode], probes: int, tps: float, seconds: float
) -> tuple[dict[str, list[float]], dict[str, list[float]], float]:
    stop = asyncio.Event()
    load = asyncio.create_task(write_load(primary, tps, stop))
    lags: dict[str, list[float]] = {r.name: [] for r in replicas}
    began = time.monotonic()

    async def sample() -> None:
        while not stop.is_set():
            status = await asyncio.to_thread(replication_status, primary)
            assert isinstance(status, PrimaryStatus)
            for replica in status.replicas:
                if replica.replay_lag_ms is not None and replica.application_name in lags:
                    lags[replica.application_name].append(replica.replay_lag_ms)
            await asyncio.sleep(0.1)

    sampler = asyncio.create_task(sample())
    seen = await visibility_ms(primary, replicas, probes)
    remaining = seconds - (time.monotonic() - began)
    if remaining > 0:
        await asyncio.sleep(remaining)
    stop.set()
    done = await load
    await sampler
    return seen, lags, done / (time.monotonic() - began)


def cut_off(replica: PgNode) -> None:
    dead = conninfo(LOCALHOST, free_port(), application_name=replica.name)
    query(replica.port, f"ALTER SYSTEM SET primary_conninfo = {quote_literal(dead)}")
    query(replica.port, "SELECT pg_reload_conf()")


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(percentile(values, 0.5), 1),
        "p99": round(percentile(values, 0.99), 1),
        "mean": round(statistics.fmean(values), 1) if values else float("nan"),
    }


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    primary = PgNode("primary", workdir / "primary", free_port())
    near = PgNode("near", workdir / "near", free_port())
    far = PgNode("far", workdir / "far", free_port())
    nodes = [primary, near, far]
    results: dict[str, Any] = {"one_way_ms": args.one_way_ms}
    try:
        began = time.monotonic()
        init_primary(primary)
        results["init_primary_s"] = round(time.monotonic() - began, 2)
        query(primary.port, "CREATE TABLE probe (id text PRIMARY KEY)", database="hemisphere")
        query(
            primary.port,
            "CREATE TABLE load (id bigserial PRIMARY KEY, payload text)",
            database="hemisphere",
        )
        with delay_proxy(primary.port, args.one_way_ms, workdir) as proxy_port:
            results["basebackup_direct_s"] = round(
                make_replica(near, LOCALHOST, primary.port).seconds, 2
            )
            results["basebackup_delayed_s"] = round(
                make_replica(far, LOCALHOST, proxy_port).seconds, 2
            )
            idle = asyncio.run(visibility_ms(primary, [near, far], args.probes))
            seen, lags, tps = asyncio.run(
                under_load(primary, [near, far], args.probes, args.load_tps, args.load_seconds)
            )
            results["visible_idle_ms"] = {k: summary(v) for k, v in idle.items()}
            results["visible_load_ms"] = {k: summary(v) for k, v in seen.items()}
            results["replay_lag_load_ms"] = {k: summary(v) for k, v in lags.items()}
            results["load_tps"] = round(tps, 1)

            # Failover: the delayed replica is cut off, the primary writes alone, then dies.
            cut_off(far)
            cut_off(near)
            for n in range(args.lost_rows):
                if n % 100 == 0:
                    values = ",".join(
                        f"('lost-{n + i}')" for i in range(min(100, args.lost_rows - n))
                    )
                    query(
                        primary.port,
                        f"INSERT INTO probe (id) VALUES {values}",
                        database="hemisphere",
                    )
            kill(primary)
            promotion = promote(far)
            results["promotion_s"] = round(promotion.seconds, 3)
            began = time.monotonic()
            follow(near, LOCALHOST, far.port)
            results["follow_s"] = round(time.monotonic() - began, 3)
            report = rejoin(primary, LOCALHOST, far.port)
            results["rejoin"] = {
                "method": report.method,
                "rewind_s": round(report.rewind_seconds, 3),
                "total_s": round(report.seconds, 3),
                "lost_transactions": report.lost_transactions,
                "lost_wal_bytes": report.lost_wal_bytes,
            }
    finally:
        for node in nodes:
            kill(node)
    return results


def show(results: dict[str, Any]) -> None:
    one_way = results["one_way_ms"]
    print(f"init primary (initdb + start): {results['init_primary_s']} s")
    print(
        f"base backup: direct {results['basebackup_direct_s']} s, "
        f"through {one_way} ms one-way delay {results['basebackup_delayed_s']} s"
    )
    for phase in ("visible_idle_ms", "visible_load_ms", "replay_lag_load_ms"):
        label = {
            "visible_idle_ms": "commit→visible, idle",
            "visible_load_ms": f"commit→visible, {results['load_tps']} tx/s",
            "replay_lag_load_ms": "pg_stat_replication replay_lag under load",
        }[phase]
        print(f"{label}:")
        # replay_lag is measured by the primary: its WAL out and the replica's reply back.
        link, link_name = (
            (2 * one_way, "RTT") if phase == "replay_lag_load_ms" else (one_way, "one-way delay")
        )
        for name, s in results[phase].items():
            ratio = s["p50"] / link if name == "far" and link else None
            extra = f"  p50/{link_name} = {ratio:.2f}" if ratio is not None else ""
            print(f"  {name:5} n={s['n']:4} p50 {s['p50']:7.1f} ms  p99 {s['p99']:7.1f} ms{extra}")
    print(f"promotion (pg_promote → first write): {results['promotion_s']} s")
    print(f"other replica follows the new timeline: {results['follow_s']} s")
    r = results["rejoin"]
    print(
        f"old primary rejoins: {r['method']} {r['rewind_s']} s (whole rejoin {r['total_s']} s), "
        f"reported lost: {r['lost_transactions']} transactions, {r['lost_wal_bytes']} WAL bytes"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--one-way-ms", type=float, default=37.5)
    parser.add_argument("--probes", type=int, default=40)
    parser.add_argument("--load-tps", type=float, default=100.0)
    parser.add_argument("--load-seconds", type=float, default=6.0)
    parser.add_argument("--lost-rows", type=int, default=500)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="hemisphere-bench-pg-"))
    try:
        results = run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    show(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
