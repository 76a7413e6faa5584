"""The last hop of a change's trace: the publish mutation puts its W3C trace context on the
broker message (under a key no GraphQL field can have), and each subscriber's delivery of it
(the `data` message) is a span in that trace, on whichever instance the subscriber is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from subscriptions.ports import TRACE_KEY, Message

# The tracer is looked up at each use: one kept from import would keep the first provider.
_TRACER = "hemisphere.subscriptions"


def carry_trace(message: Message) -> None:
    """Add the current span's context to `message` (nothing outside a span)."""
    if trace.get_current_span().get_span_context().is_valid:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        message[TRACE_KEY] = carrier


def record_delivery(message: Mapping[str, Any], field: str) -> None:
    """One span, in the message's trace, for its delivery to one subscriber of `field`."""
    carrier = message.get(TRACE_KEY)
    if not isinstance(carrier, Mapping):
        return
    parent = propagate.extract({str(k): str(v) for k, v in carrier.items()})
    trace.get_tracer(_TRACER).start_span(
        f"subscription {field} data",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={"graphql.subscription.field": field},
    ).end()
