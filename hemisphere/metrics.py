"""Prometheus metrics of one app: a registry of its own (tests build many apps in a process;
the library's global registry would refuse the second), served at /metrics.

Three kinds of sources, each as cheap as its place demands:
- the request path (GraphQL requests by operation and errorType, latency): one counter and
  one histogram update per request, after the answer was sent (hemisphere.http.telemetry);
- what is read at scrape time, from memory (subscribers of this instance's broker);
- what costs a backend call (queue depths, orders by status, projection and replication lag):
  sampled in the background every `interval` seconds by the runtime (Sampler), never on a
  scrape, so scraping often costs nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

from graphql import GraphQLSyntaxError, OperationDefinitionNode, parse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Reads from DynamoDB answer in a few ms, mutations in tens: buckets from 1 ms to 10 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A change reaches the publisher a few hundred ms after it was made (the stream's poll).
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
# Operation names are chosen by clients: past this many distinct ones, the rest count as
# "other" (an unbounded label would grow the registry without end).
MAX_OPERATION_NAMES = 200
# What a document that does not parse counts as, and a request refused before its document
# was read (unauthorized, throttled, malformed).
INVALID = "invalid"
UNREAD = "unknown"


@lru_cache(maxsize=1024)
def operation_of(query: str, operation_name: str | None) -> tuple[str, str]:
    """The type (query, mutation, subscription) and name of the operation a request runs;
    parsed once per distinct document (clients send the same few over and over)."""
    try:
        document = parse(query, max_tokens=15_000)
    except GraphQLSyntaxError:
        return INVALID, operation_name or ""
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        name = definition.name.value if definition.name else ""
        if operation_name is None or name == operation_name:
            return definition.operation.value, name
    return INVALID, operation_name or ""


@runtime_checkable
class CountsSubscribers(Protocol):
    def subscriber_count(self, channel: str) -> int: ...


class ApiMetrics:
    """The metrics of one app, and the collectors its runtime brings (attach/detach)."""

    def __init__(self, subscription_channels: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "hemisphere_graphql_requests",
            "GraphQL requests over HTTP, by operation and by the first error's errorType "
            "(empty: no error)",
            ("operation_type", "operation_name", "error_type"),
            registry=self.registry,
        )
        self._latency = Histogram(
            "hemisphere_graphql_request_duration_seconds",
            "Time from a GraphQL request's arrival to its answer, by operation type",
            ("operation_type",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._names: set[str] = set()
        # The labelled children, looked up once per distinct request kind: labels() takes
        # a lock and builds tuples, which a request need not pay each time.
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._subscribers = _Subscribers(tuple(sorted(subscription_channels)))
        self.registry.register(self._subscribers)
        self._attached: list[Collector] = []

    def observe_request(
        self, query: str | None, operation_name: str | None, error_type: str, seconds: float
    ) -> None:
        """One answered POST /graphql; `query` None when the request had none readable."""
        if query is None:
            kind, name = UNREAD, ""
        else:
            kind, name = operation_of(query, operation_name)
        children = self._children.get((kind, name, error_type))
        if children is None:
            children = self._children_of(kind, name, error_type)
        counter, histogram = children
        counter.inc()
        histogram.observe(seconds)

    def _children_of(self, kind: str, name: str, error_type: str) -> tuple[Any, Any]:
        key = (kind, name, error_type)
        if name not in self._names:
            if len(self._names) >= MAX_OPERATION_NAMES:
                name = "other"
            else:
                self._names.add(name)
        children = (
            self._requests.labels(kind, name, error_type),
            self._latency.labels(kind),
        )
        if len(self._children) < 4 * MAX_OPERATION_NAMES:
            self._children[key] = children
        return children

    def watch_broker(self, broker: Callable[[], object | None]) -> None:
        """Count the subscribers of the broker `broker()` gives (None: not started)."""
        self._subscribers.broker = broker

    def attach(self, collectors: Iterable[Collector]) -> None:
        """Serve a runtime's collectors too, until detach()."""
        for collector in collectors:
            self.registry.register(collector)
            self._attached.append(collector)

    def detach(self) -> None:
        while self._attached:
            self.registry.unregister(self._attached.pop())

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Subscribers(Collector):
    """Subscriptions established on this instance, by the mutation that triggers them (the
    broker's channel), read from memory at scrape time."""

    def __init__(self, channels: tuple[str, ...]) -> None:
        self.channels = channels
        self.broker: Callable[[], object | None] = lambda: None

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "hemisphere_subscriptions_active",
            "Subscriptions established on this instance, by the mutation that triggers them",
            labels=("mutation",),
        )
        broker = self.broker()
        if isinstance(broker, CountsSubscribers):
            for channel in self.channels:
                family.add_metric((channel,), broker.subscriber_count(channel))
        yield family


# --- what the runtime measures ---------------------------------------------------------------

# Reads one backend's figures: label values → number (e.g. (queue, state) → messages).
Sample = Callable[[], Awaitable[Mapping[tuple[str, ...], float]]]


@dataclass(frozen=True)
class Gauge:
    """A gauge family whose values a Sample reads in the background."""

    name: str
    documentation: str
    labels: tuple[str, ...]
    sample: Sample


@dataclass(eq=False)  # registries key collectors by identity
class Sampler(Collector):
    """Gauges read from backends every `interval` seconds (run() in the background): a scrape
    serves the last values read, and a backend that is down keeps its gauges out of the
    scrape rather than reporting stale numbers as current."""

    gauges: tuple[Gauge, ...]
    interval: float = 15.0
    _values: dict[str, Mapping[tuple[str, ...], float]] = field(default_factory=dict)

    async def sample_once(self) -> None:
        for gauge in self.gauges:
            try:
                self._values[gauge.name] = await gauge.sample()
            except Exception as error:
                self._values.pop(gauge.name, None)
                log.debug("metrics: could not read %s: %s", gauge.name, error)

    async def run(self) -> None:
        while True:
            await self.sample_once()
            await asyncio.sleep(self.interval)

    def collect(self) -> Iterator[Metric]:
        for gauge in self.gauges:
            values = self._values.get(gauge.name)
            if values is None:
                continue
            family = GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labels)
            for labels, value in sorted(values.items()):
                family.add_metric(labels, value)
            yield family


def stream_lag_histogram() -> Histogram:
    """How long after a change was made the stream publisher sent it (unregistered: the
    app's registry adopts it with the runtime's other collectors)."""
    return Histogram(
        "hemisphere_stream_publication_lag_seconds",
        "From a change of the projection table to its publication to the subscribers' API",
        buckets=LAG_BUCKETS,
        registry=None,
    )


# --- the replicator's ------------------------------------------------------------------------


class _Replication(Collector):
    """A replicator's status (regions.replication.Replicator.status()) as metrics."""

    def __init__(self, status: Mapping[str, Any]) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "hemisphere_dynamodb_replication_lag_seconds",
            "From a change in this region's table to its write in the target region's "
            "(last, p50, p99 and max of the recent samples)",
            labels=("target", "stat"),
        )
        pending = GaugeMetricFamily(
            "hemisphere_dynamodb_replication_pending_seconds",
            "Age of the oldest change still waiting for a target (a target that is down)",
            labels=("target",),
        )
        histogram = HistogramMetricFamily(
            "hemisphere_dynamodb_replication_lag_histogram_seconds",
            "From a change in this region's table to its write in the target region's, every "
            "change since the replicator started (histogram_quantile over any range)",
            labels=("target",),
        )
        items = CounterMetricFamily(
            "hemisphere_dynamodb_replication_items",
            "Items sent to and written in each target region",
            labels=("target", "outcome"),
        )
        for target, pipeline in sorted(self._status.get("targets", {}).items()):
            for stat in ("last", "p50", "p99", "max"):
                value = (pipeline.get("lag_ms") or {}).get(stat)
                if value is not None:
                    lag.add_metric((target, stat), value / 1000)
            if pipeline.get("pending_ms") is not None:
                pending.add_metric((target,), pipeline["pending_ms"] / 1000)
            counted = pipeline.get("lag_histogram")
            if counted is not None:
                histogram.add_metric(
                    (target,), _cumulative_buckets(counted), counted["sum_ms"] / 1000
                )
            for outcome in ("sent", "written"):
                items.add_metric((target, outcome), pipeline.get(outcome, 0))
        yield from (lag, pending, histogram, items)


def _cumulative_buckets(counted: Mapping[str, Any]) -> list[tuple[str, float]]:
    """A lag histogram's wire shape (regions.lag_histogram) as Prometheus buckets: cumulative
    counts by upper bound in seconds, +Inf last."""
    bounds = [*(str(bound / 1000) for bound in counted["le_ms"]), "+Inf"]
    return list(zip(bounds, itertools.accumulate(counted["counts"]), strict=True))


def replication_metrics(status: Mapping[str, Any]) -> bytes:
    """The Prometheus text of a replicator's status (its /metrics)."""
    registry = CollectorRegistry()
    registry.register(_Replication(status))
    return generate_latest(registry)
