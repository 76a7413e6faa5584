"""Traces with an in-memory span exporter, hop by hop over fakes: the HTTP request continues
the caller's traceparent and its resolvers are its children; a StartExecution made in a span
carries the context in the saga's input (and a retry's idempotency check ignores it); the
worker's step continues it from the task message, a profile update from the event's detail;
a publish mutation's broker message carries it to the subscriber's delivery.
(tests/e2e/test_tracing.py runs the whole chain.)"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from adapters.tracing import _into_event_details, _into_execution_input, without_trace_context
from domain.tracing import TRACE_CONTEXT_KEY
from hemisphere.app import create_app
from subscriptions.tracing import TRACE_KEY, carry_trace, record_delivery
from tests.support.app import API_KEY, SETTINGS, client_for, fake_runtime, runtime_factory
from tests.support.fakes import InMemoryReader, make_products
from tests.support.task_queue import InMemoryTaskQueue, RecordingAnswers, eventually, task_body
from workflows.profile_updates import parse_message
from workflows.tracing import work_span
from workflows.worker import SagaTaskHandler

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """A tracer provider for this test only: OpenTelemetry allows one per process, so the
    globals are put back afterwards (what OpenTelemetry's own test utilities do), and the
    other tests of the process run untraced."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    trace.set_tracer_provider(provider)
    try:
        yield exporter
    finally:
        provider.shutdown()
        trace._TRACER_PROVIDER_SET_ONCE = Once()
        trace._TRACER_PROVIDER = None


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def hex_trace(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


async def test_the_request_continues_the_callers_trace_and_parents_its_resolvers(
    spans: InMemorySpanExporter,
) -> None:
    runtime = fake_runtime(InMemoryReader(products=make_products(2)))
    app = create_app(SETTINGS, runtime_factory=runtime_factory(runtime))
    query = 'query One { product(id: "p-0001") { id name } }'
    async with client_for(app) as client:
        answer = await client.post(
            "/graphql",
            json={"query": query, "operationName": "One"},
            headers={
                "x-api-key": API_KEY,
                "traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01",
            },
        )
    assert answer.status_code == 200 and answer.json()["data"]["product"]["id"] == "p-0001"
    named = by_name(spans)
    request, resolver = named["query One"], named["Query.product"]
    assert hex_trace(request) == CLIENT_TRACE == hex_trace(resolver)
    assert request.parent is not None and format(request.parent.span_id, "016x") == CLIENT_SPAN
    assert resolver.parent is not None and request.context is not None
    assert resolver.parent.span_id == request.context.span_id
    assert request.attributes is not None
    assert request.attributes["aws.request_id"] == answer.headers["x-amzn-requestid"]
    # Plain attribute reads get no span of their own.
    assert "Product.name" not in named


async def test_the_saga_input_carries_the_context_to_the_worker_step(
    spans: InMemorySpanExporter,
) -> None:
    tracer = trace.get_tracer("test")
    execution_input = json.dumps({"orderId": "o-1", "request": {"customerId": "c-1"}})
    with tracer.start_as_current_span("mutation Checkout") as mutation:
        params = {"stateMachineArn": "arn", "name": "checkout-o-1", "input": execution_input}
        _into_execution_input(params)
    sent = json.loads(params["input"])
    assert TRACE_CONTEXT_KEY in sent and "traceparent" in sent[TRACE_CONTEXT_KEY]
    # A retry of the same checkout compares inputs without it: the same execution.
    assert without_trace_context(sent) == json.loads(execution_input)

    # Step Functions passes the input whole into each task message (the ASL's "input.$": "$").
    queue, answers = InMemoryTaskQueue(), RecordingAnswers()

    async def step(name: str, state: object) -> dict[str, str]:
        return {"done": name}

    queue.put(task_body("CreateOrder", sent, "token-1"))
    (task,) = await queue.receive(1)
    await SagaTaskHandler(answers, step).handle(task.body)
    await eventually(lambda: bool(answers.answers))

    saga_step = by_name(spans)["saga CreateOrder"]
    assert hex_trace(saga_step) == format(mutation.get_span_context().trace_id, "032x")
    assert saga_step.parent is not None
    assert saga_step.parent.span_id == mutation.get_span_context().span_id


async def test_an_event_detail_carries_the_context_to_the_profile_update(
    spans: InMemorySpanExporter,
) -> None:
    tracer = trace.get_tracer("test")
    detail = {"requestId": "r-1", "customerId": "c-1", "idempotencyKey": "k-1", "name": "N"}
    with tracer.start_as_current_span("mutation UpdateProfile") as mutation:
        params = {"Entries": [{"Source": "hemisphere", "Detail": json.dumps(detail)}]}
        _into_event_details(params)
    # EventBridge delivers the event to the queue with the detail as it was put.
    body = json.dumps({"detail-type": "x", "detail": json.loads(params["Entries"][0]["Detail"])})
    request = parse_message(body)
    assert request.command.customer_id == "c-1"
    with work_span("profile update", request.trace_context):
        pass
    (update,) = [s for s in spans.get_finished_spans() if s.name == "profile update"]
    assert update.parent is not None
    assert update.parent.span_id == mutation.get_span_context().span_id


async def test_a_broker_message_carries_the_context_to_each_delivery(
    spans: InMemorySpanExporter,
) -> None:
    tracer = trace.get_tracer("test")
    message: dict[str, object] = {"id": "o-1", "version": 3}
    with tracer.start_as_current_span("mutation PublishOrder") as publish:
        carry_trace(message)
    assert TRACE_KEY in message
    record_delivery(message, "onOrderChanged")
    record_delivery({"id": "o-1"}, "onOrderChanged")  # untraced: no span
    (delivery,) = [s for s in spans.get_finished_spans() if s.name.startswith("subscription")]
    assert delivery.name == "subscription onOrderChanged data"
    assert delivery.parent is not None
    assert delivery.parent.span_id == publish.get_span_context().span_id


async def test_tracing_is_off_by_default() -> None:
    from hemisphere.tracing import tracer_for

    assert tracer_for(SETTINGS) is None
    message: dict[str, object] = {"id": "o-1"}
    carry_trace(message)
    assert message == {"id": "o-1"}
