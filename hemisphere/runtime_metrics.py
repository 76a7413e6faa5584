"""The metrics a runtime measures with its backends (hemisphere.metrics.Sampler): the task and
profile queues' depths, the orders by status (the sagas' outcomes and those in flight) and
how far the projections lag the relational model, in the primary; the replay lag of a
PostgreSQL hot standby, in a secondary. Sampled in the background, served by the app."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from adapters.postgres.health import outbox_lag_seconds
from adapters.postgres.metrics import orders_by_status, replay_lag_seconds
from adapters.queue_metrics import queue_messages
from hemisphere.background import cancel_task
from hemisphere.metrics import Gauge, Sampler
from hemisphere.settings import Settings
from hemisphere.write_path import AwsClients
from projections.read_cache import ReadCache

SAMPLE_INTERVAL_SECONDS = 15.0


async def start_sampling(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    pool: asyncpg.Pool[Any],
    clients: AwsClients,
    *,
    standby: bool,
    interval: float = SAMPLE_INTERVAL_SECONDS,
) -> tuple[Collector, ...]:
    """Start sampling (until the stack closes); the collector to serve. Nothing when
    /metrics is off."""
    if not settings.metrics_enabled:
        return ()
    gauges = [_replication_lag(pool)] if standby else []
    if settings.region == settings.primary_region and not standby:
        queues = {"tasks": clients.machines.queue_url, "profiles": clients.profile_queue_url}
        gauges += [_queue_depths(clients.sqs, queues), _orders(pool), _projection_lag(pool)]
    if not gauges:
        return ()
    sampler = Sampler(tuple(gauges), interval)
    stack.push_async_callback(
        cancel_task, asyncio.create_task(sampler.run(), name="metrics-sampler")
    )
    return (sampler,)


def _queue_depths(sqs: Any, queues: dict[str, str]) -> Gauge:
    async def sample() -> dict[tuple[str, ...], float]:
        values: dict[tuple[str, ...], float] = {}
        for name, url in queues.items():
            for state, count in (await queue_messages(sqs, url)).items():
                values[(name, state)] = count
        return values

    return Gauge(
        "hemisphere_queue_messages",
        "Messages of the saga task queue and the profile update queue, waiting or being "
        "worked on (SQS's approximate counts)",
        ("queue", "state"),
        sample,
    )


def _orders(pool: asyncpg.Pool[Any]) -> Gauge:
    async def sample() -> dict[tuple[str, ...], float]:
        return {(status,): n for status, n in (await orders_by_status(pool)).items()}

    return Gauge(
        "hemisphere_orders",
        "Orders by status: CONFIRMED, FAILED and CANCELLED are sagas' outcomes; PENDING, "
        "RESERVED, AUTHORIZED and CAPTURED sagas in flight",
        ("status",),
        sample,
    )


def _projection_lag(pool: asyncpg.Pool[Any]) -> Gauge:
    async def sample() -> dict[tuple[str, ...], float]:
        return {("outbox",): await outbox_lag_seconds(pool)}

    return Gauge(
        "hemisphere_projection_lag_seconds",
        "Age of the oldest change of the relational model not yet applied to the projections",
        ("source",),
        sample,
    )


def _replication_lag(pool: asyncpg.Pool[Any]) -> Gauge:
    async def sample() -> dict[tuple[str, ...], float]:
        lag = await replay_lag_seconds(pool)
        return {} if lag is None else {("postgres",): lag}

    return Gauge(
        "hemisphere_replication_lag_seconds",
        "How far this region's replica is behind the primary (PostgreSQL: replay lag)",
        ("store",),
        sample,
    )


class ReadCacheMetrics(Collector):
    """The read cache's figures, read when /metrics is scraped: hits and misses (items,
    pages and answers together), answers refused because what they read changed meanwhile,
    resets after a gap in the change feed, and what it holds."""

    def __init__(self, cache: ReadCache) -> None:
        self._cache = cache

    def collect(self) -> Any:
        stats = self._cache.stats()
        counters: list[Metric] = [
            CounterMetricFamily(
                "hemisphere_read_cache_hits", "Reads answered from the read cache", stats.hits
            ),
            CounterMetricFamily(
                "hemisphere_read_cache_misses", "Reads the read cache sent on", stats.misses
            ),
            CounterMetricFamily(
                "hemisphere_read_cache_refused",
                "Values not kept: something they were built from changed meanwhile",
                stats.refused,
            ),
            CounterMetricFamily(
                "hemisphere_read_cache_resets",
                "Times the cache was emptied after a gap in its change feed",
                stats.resets,
            ),
        ]
        held = GaugeMetricFamily(
            "hemisphere_read_cache_entries", "What the read cache holds", labels=["kind"]
        )
        held.add_metric(["items"], stats.items)
        held.add_metric(["entries"], stats.entries)
        held.add_metric(["entry_bytes"], stats.entry_bytes)
        return [*counters, held]
