"""/metrics over a fake runtime: served without credentials on the API's port (or on a port
of its own, or not at all), counting GraphQL requests by operation and errorType with their
latency, subscriptions from the broker, and the runtime's sampled gauges; every answer has
an x-amzn-RequestId."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from hemisphere.app import create_app
from hemisphere.localstack import free_port
from hemisphere.metrics import Gauge, Sampler
from hemisphere.settings import Settings, SettingsError
from subscriptions.inprocess import InProcessBroker
from tests.support.app import API_KEY, SETTINGS, client_for, fake_runtime, runtime_factory
from tests.support.fakes import InMemoryReader

REGION_QUERY = {"query": "query Where { region { region } }", "operationName": "Where"}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


def app_with(settings: Settings = SETTINGS, broker: InProcessBroker | None = None) -> Starlette:
    runtime = fake_runtime(InMemoryReader(), broker=broker)

    async def queue_depth() -> Mapping[tuple[str, ...], float]:
        return {("tasks", "waiting"): 3}

    sampler = Sampler((Gauge("hemisphere_queue_messages", "q", ("queue", "state"), queue_depth),))
    runtime = replace(runtime, collectors=(sampler,))
    app = create_app(settings, runtime_factory=runtime_factory(runtime))
    app.state.sampler = sampler
    return app


async def test_requests_are_counted_by_operation_and_error_type() -> None:
    app = app_with()
    async with client_for(app) as client:
        ok = await client.post("/graphql", json=REGION_QUERY, headers={"x-api-key": API_KEY})
        again = await client.post("/graphql", json=REGION_QUERY, headers={"x-api-key": API_KEY})
        refused = await client.post("/graphql", json=REGION_QUERY)
        bad = await client.post(
            "/graphql", json={"query": "{ nope }"}, headers={"x-api-key": API_KEY}
        )
        scraped = await client.get("/metrics")
    assert ok.status_code == 200 and refused.status_code == 401 and bad.status_code == 200
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    requests = "hemisphere_graphql_requests_total"
    ok_labels = {"operation_type": "query", "operation_name": "Where", "error_type": ""}
    assert value(text, requests, **ok_labels) == 2
    refused_labels = {
        "operation_type": "unknown",
        "operation_name": "",
        "error_type": "UnauthorizedException",
    }
    assert value(text, requests, **refused_labels) == 1
    bad_labels = {"operation_type": "query", "operation_name": "", "error_type": "ValidationError"}
    assert value(text, requests, **bad_labels) == 1
    latency = "hemisphere_graphql_request_duration_seconds_count"
    assert value(text, latency, operation_type="query") == 3
    # Every answer, refusals too, has its request id; each its own.
    ids = {r.headers["x-amzn-requestid"] for r in (ok, again, refused, bad, scraped)}
    assert len(ids) == 5


async def test_subscriptions_and_sampled_gauges() -> None:
    broker = InProcessBroker()
    app = app_with(broker=broker)
    async with client_for(app) as client:
        await app.state.sampler.sample_once()
        listener = broker.subscribe("publishOrder")
        text = (await client.get("/metrics")).text
        await listener.aclose()  # type: ignore[attr-defined]
        after = (await client.get("/metrics")).text
    active = "hemisphere_subscriptions_active"
    assert value(text, active, mutation="publishOrder") == 1
    assert value(text, active, mutation="publishProduct") == 0
    assert value(after, active, mutation="publishOrder") == 0
    assert value(text, "hemisphere_queue_messages", queue="tasks", state="waiting") == 3


async def test_a_failing_sample_leaves_its_gauge_out() -> None:
    async def down() -> Mapping[tuple[str, ...], float]:
        raise ConnectionRefusedError("sqs")

    sampler = Sampler((Gauge("hemisphere_queue_messages", "q", ("queue", "state"), down),))
    await sampler.sample_once()
    assert list(sampler.collect()) == []


async def test_metrics_off() -> None:
    app = app_with(replace(SETTINGS, metrics_enabled=False))
    async with client_for(app) as client:
        scraped = await client.get("/metrics")
        ok = await client.post("/graphql", json=REGION_QUERY, headers={"x-api-key": API_KEY})
    assert scraped.status_code == 404
    assert ok.status_code == 200 and ok.headers["x-amzn-requestid"]


async def test_metrics_on_a_port_of_their_own() -> None:
    port = free_port()
    app = app_with(replace(SETTINGS, metrics_port=port))
    async with client_for(app) as client:
        await client.post("/graphql", json=REGION_QUERY, headers={"x-api-key": API_KEY})
        on_api_port = await client.get("/metrics")
        async with httpx.AsyncClient() as scraper:
            scraped = await scraper.get(f"http://127.0.0.1:{port}/metrics")
    assert on_api_port.status_code == 404
    assert scraped.status_code == 200
    labels = {"operation_type": "query", "operation_name": "Where", "error_type": ""}
    assert value(scraped.text, "hemisphere_graphql_requests_total", **labels) == 1
    await asyncio.sleep(0)
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as scraper:
            await scraper.get(f"http://127.0.0.1:{port}/metrics")


def test_metrics_setting() -> None:
    assert Settings.from_env({}).metrics_enabled is True
    assert Settings.from_env({}).metrics_port is None
    assert Settings.from_env({"HEMISPHERE_METRICS": "off"}).metrics_enabled is False
    assert Settings.from_env({"HEMISPHERE_METRICS": "29123"}).metrics_port == 29123
    for wrong in ("70000", "maybe"):
        with pytest.raises(SettingsError, match="HEMISPHERE_METRICS"):
            Settings.from_env({"HEMISPHERE_METRICS": wrong})
