"""Where a document that crosses processes (a saga's input, so each of its task messages; an
event's detail) carries the W3C trace context of the request that caused it: under this key,
as the headers `traceparent` (and `tracestate`) would be."""

from __future__ import annotations

from typing import Final

TRACE_CONTEXT_KEY: Final = "traceContext"
