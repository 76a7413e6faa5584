"""One checkout is one trace: `hemisphere serve` with an OTLP endpoint exports, to a collector
kept in memory here, spans of the checkout's HTTP request, its resolver, the StartExecution
call, every saga step (their context crossed Step Functions' input and the SQS task
messages), the stream publication of the order's changes (it crossed the outbox, the
projection item and the DynamoDB stream), the publish request, and the delivery of the
`data` message to the subscriber: all under the mutation's trace id."""

from __future__ import annotations

import asyncio
import gzip
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from gql import Client, GraphQLRequest, gql
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.appsync_auth import AppSyncJWTAuthentication
from gql.transport.appsync_websockets import AppSyncWebsocketsTransport
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from hemisphere.localstack import free_port
from tests.e2e.test_serve import Served, start_serve

pytestmark = pytest.mark.e2e

CHECKOUT = """mutation Checkout($input: CheckoutInput!) { checkout(input: $input) { id status } }"""
SUBSCRIPTION = "subscription($c: ID) { onOrderChanged(customerId: $c) { id status } }"
CLI = (sys.executable, "-m", "hemisphere.cli")
SAGA_STEPS = ("CreateOrder", "ReserveInventory", "AuthorizePayment", "ConfirmOrder")


class Collector:
    """An OTLP/HTTP trace receiver that keeps every span it is sent: (trace id, span id,
    parent span id, name)."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str, str]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        for span in scope.spans:
                            collector.spans.append(
                                (
                                    span.trace_id.hex(),
                                    span.span_id.hex(),
                                    span.parent_span_id.hex(),
                                    span.name,
                                )
                            )
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.end_headers()
                self.wfile.write(b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def names_in(self, trace_id: str) -> list[str]:
        return [name for trace, _, _, name in list(self.spans) if trace == trace_id]


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    receiver = Collector()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, collector: Collector) -> Iterator[Served]:
    # Spans are exported in batches every 5 s by default: sooner, so the test waits less.
    extra = {"HEMISPHERE_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    server = start_serve(tmp_path_factory.mktemp("tracing") / "data", extra_env=extra)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()


def customer_auth(served: Served, customer: str) -> AppSyncJWTAuthentication:
    """A token of serve's development issuer for `customer` (`hemisphere token`)."""
    token = subprocess.run(
        [*CLI, "token", customer, "--data-dir", str(served.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return AppSyncJWTAuthentication(host=f"127.0.0.1:{served.port}", jwt=token)


async def test_one_checkout_is_one_trace_to_the_subscriber(
    served: Served, collector: Collector
) -> None:
    auth = customer_auth(served, "c-0006")
    transport = AppSyncWebsocketsTransport(url=f"ws://127.0.0.1:{served.port}/graphql", auth=auth)
    subscription = gql(SUBSCRIPTION)
    subscription.variable_values = {"c": "c-0006"}
    async with Client(transport=transport) as session:
        confirmed = asyncio.Event()

        async def listen() -> None:
            async for event in session.subscribe(subscription):
                if event["onOrderChanged"]["status"] == "CONFIRMED":
                    confirmed.set()
                    return

        listening = asyncio.create_task(listen())
        await asyncio.sleep(1)  # registered once start_ack came back
        http = Client(transport=AIOHTTPTransport(url=served.url, auth=auth))
        async with http as api:
            placed = await api.execute(
                GraphQLRequest(
                    CHECKOUT,
                    variable_values={
                        "input": {
                            "customerId": "c-0006",
                            "lines": [{"productId": "p-0011", "quantity": 1}],
                            "paymentToken": "tok_visa",
                            "idempotencyKey": "trace-test-1",
                        }
                    },
                    operation_name="Checkout",
                )
            )
        assert placed["checkout"]["status"] == "PENDING"
        await asyncio.wait_for(listening, timeout=60)

    # The trace is the one whose root is the checkout's request.
    deadline = time.monotonic() + 20
    while True:
        roots = [s for s in list(collector.spans) if s[3] == "mutation Checkout"]
        if roots:
            trace_id = roots[0][0]
            names = collector.names_in(trace_id)
            wanted = [
                "Mutation.checkout",
                "SFN.StartExecution",
                *(f"saga {step}" for step in SAGA_STEPS),
                "publishOrder",
                "mutation PublishOrder",
                "subscription onOrderChanged data",
            ]
            missing = [name for name in wanted if name not in names]
            if not missing:
                break
        assert time.monotonic() < deadline, (
            f"missing {missing if roots else 'the checkout request'} in {sorted(set(names))}"
            if roots
            else f"no checkout span among {sorted({s[3] for s in collector.spans})}"
        )
        await asyncio.sleep(0.5)
    # Every span of the trace hangs from another of it (one tree, not pieces).
    spans = [s for s in list(collector.spans) if s[0] == trace_id]
    ids = {span_id for _, span_id, _, _ in spans}
    orphans = [name for _, _, parent, name in spans if parent and parent not in ids]
    assert orphans == [], orphans
