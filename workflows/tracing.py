"""A span for each piece of work a worker does on behalf of a request, continuing the trace
the request started (its W3C context travels in the work's document: domain.tracing)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind

from domain.tracing import TRACE_CONTEXT_KEY

# The tracer is looked up at each use: one kept from import would keep the first provider.
_TRACER = "hemisphere.workflows"


@contextmanager
def work_span(name: str, document: Mapping[str, Any], **attributes: str) -> Iterator[Span]:
    """A consumer span named `name`, child of the context `document` carries (a new trace
    when it carries none); a no-op span while tracing is off."""
    carrier = document.get(TRACE_CONTEXT_KEY)
    parent = None
    if isinstance(carrier, Mapping):
        parent = propagate.extract({str(k): str(v) for k, v in carrier.items()})
    with trace.get_tracer(_TRACER).start_as_current_span(
        name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    ) as span:
        yield span
