"""Spans for AWS calls, and the W3C trace context carried in what crosses to other processes.

Hooked into botocore's events of every client adapters.aws builds: a call made inside a span
(a request, a saga step) gets a client span of its own; a call outside any (the background
pollers: stream reads, topology watch) costs one context lookup and makes none. When a span
is current, a StartExecution input (so every task message of the saga: the ASL passes its
input whole) and each PutEvents detail carry `traceContext` ({"traceparent": ...}), which
the consumers (workflows.worker, the profile update worker) continue.
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from domain.tracing import TRACE_CONTEXT_KEY

_SPAN = "hemisphere_span"

# The tracer is looked up at each use: one kept from import would keep the first provider.
_TRACER = "hemisphere.aws"


def instrument(client: Any) -> None:
    """Register the hooks on an aiobotocore client (once per client)."""
    events = client.meta.events
    events.register("before-parameter-build.sfn.StartExecution", _into_execution_input)
    events.register("before-parameter-build.eventbridge.PutEvents", _into_event_details)
    events.register("before-call", _start_span)
    events.register("after-call", _end_span)
    events.register("after-call-error", _end_span_with_error)


def trace_context() -> dict[str, str]:
    """The current span's context as W3C headers ({} outside a span)."""
    carrier: dict[str, str] = {}
    if trace.get_current_span().get_span_context().is_valid:
        propagate.inject(carrier)
    return carrier


def without_trace_context(document: Any) -> Any:
    """`document` as its sender meant it: without the context the hooks added (for
    comparisons of an execution's input with the one a retry would send)."""
    if isinstance(document, dict) and TRACE_CONTEXT_KEY in document:
        return {k: v for k, v in document.items() if k != TRACE_CONTEXT_KEY}
    return document


def _with_context(raw: Any, carrier: dict[str, str]) -> Any:
    try:
        document = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return raw
    if not isinstance(document, dict):
        return raw
    return json.dumps({**document, TRACE_CONTEXT_KEY: carrier})


def _into_execution_input(params: dict[str, Any], **_: Any) -> None:
    carrier = trace_context()
    if carrier and "input" in params:
        params["input"] = _with_context(params["input"], carrier)


def _into_event_details(params: dict[str, Any], **_: Any) -> None:
    carrier = trace_context()
    if not carrier:
        return
    for entry in params.get("Entries", ()):
        if isinstance(entry, dict) and "Detail" in entry:
            entry["Detail"] = _with_context(entry["Detail"], carrier)


def _start_span(model: Any, context: dict[str, Any], **_: Any) -> None:
    if not trace.get_current_span().get_span_context().is_valid:
        return
    service = model.service_model.service_id
    context[_SPAN] = trace.get_tracer(_TRACER).start_span(
        f"{service}.{model.name}",
        kind=SpanKind.CLIENT,
        attributes={
            "rpc.system": "aws-api",
            "rpc.service": str(service),
            "rpc.method": model.name,
        },
    )


def _end_span(http_response: Any, context: dict[str, Any], **_: Any) -> None:
    span = context.pop(_SPAN, None)
    if span is None:
        return
    status = getattr(http_response, "status_code", 0)
    span.set_attribute("http.response.status_code", status)
    if status >= 300:
        span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
    span.end()


def _end_span_with_error(exception: BaseException, context: dict[str, Any], **_: Any) -> None:
    span = context.pop(_SPAN, None)
    if span is None:
        return
    span.record_exception(exception)
    span.set_status(Status(StatusCode.ERROR, type(exception).__name__))
    span.end()
