"""What every HTTP request gets on its way in and out: a request id (answered as
`x-amzn-RequestId`, as AppSync does, and carried into its log records), a server span when
tracing is on (continuing the caller's W3C `traceparent`), and for POST /graphql one count
and one latency sample by operation and errorType, recorded after the answer was sent.

The GraphQL endpoint tells what it ran and how it ended through `note_operation` and
`note_answer`; this middleware owns the request's record in a context variable."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hemisphere.logs import request_id
from hemisphere.metrics import ApiMetrics, operation_of

REQUEST_ID_HEADER = b"x-amzn-requestid"

# Request ids shaped like AppSync's (a UUID): a random prefix per process and a counter,
# unique without a system call for randomness on every request.
_PROCESS_PREFIX = str(uuid.uuid4())[:24]
_sequence = itertools.count(1)


def new_request_id() -> str:
    return f"{_PROCESS_PREFIX}{next(_sequence) % 16**12:012x}"


@dataclass(slots=True)
class _GraphQLRecord:
    query: str | None = None
    operation_name: str | None = None
    error_type: str = ""


_record: ContextVar[_GraphQLRecord | None] = ContextVar("hemisphere_graphql", default=None)


def note_operation(query: str, operation_name: str | None) -> None:
    """The endpoint read a well-formed request for this operation."""
    record = _record.get()
    if record is not None:
        record.query, record.operation_name = query, operation_name


def note_answer(payload: object) -> None:
    """The endpoint answers `payload`: its first error's errorType is the request's."""
    record = _record.get()
    if record is None or not isinstance(payload, Mapping):
        return
    errors = payload.get("errors")
    if errors and isinstance(errors, list) and isinstance(errors[0], Mapping):
        record.error_type = str(errors[0].get("errorType") or "Unknown")


class TelemetryMiddleware:
    def __init__(
        self, app: ASGIApp, *, metrics: ApiMetrics | None, tracer: trace.Tracer | None
    ) -> None:
        self._app = app
        self._metrics = metrics
        self._tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        rid = new_request_id()
        rid_token = request_id.set(rid)
        graphql = scope["path"] == "/graphql" and scope["method"] == "POST"
        record = _GraphQLRecord() if graphql else None
        record_token = _record.set(record)
        status: list[int] = []

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                headers = [*message.get("headers", ()), (REQUEST_ID_HEADER, rid.encode())]
                message = {**message, "headers": headers}
            await send(message)

        started = time.perf_counter()
        try:
            if self._tracer is None:
                await self._app(scope, receive, send_with_id)
            else:
                await self._traced(scope, receive, send_with_id, rid, record, status)
        except Exception:
            if record is not None:
                record.error_type = "InternalFailure"
            raise
        finally:
            elapsed = time.perf_counter() - started
            _record.reset(record_token)
            request_id.reset(rid_token)
            if record is not None and self._metrics is not None:
                self._metrics.observe_request(
                    record.query, record.operation_name, record.error_type, elapsed
                )

    async def _traced(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        rid: str,
        record: _GraphQLRecord | None,
        status: list[int],
    ) -> None:
        assert self._tracer is not None
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        name = f"{scope['method']} {scope['path']}"
        with self._tracer.start_as_current_span(
            name,
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": scope["method"],
                "url.path": scope["path"],
                "aws.request_id": rid,
            },
        ) as span:
            await self._app(scope, receive, send)
            if status:
                span.set_attribute("http.response.status_code", status[0])
            if record is not None and record.query is not None:
                kind, operation = operation_of(record.query, record.operation_name)
                span.update_name(f"{kind} {operation}".strip())
                span.set_attributes(_graphql_attributes(kind, operation, record.error_type))
                if record.error_type:
                    span.set_status(Status(StatusCode.ERROR, record.error_type))


def _graphql_attributes(kind: str, operation: str, error_type: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {"graphql.operation.type": kind}
    if operation:
        attributes["graphql.operation.name"] = operation
    if error_type:
        attributes["graphql.error_type"] = error_type
    return attributes
