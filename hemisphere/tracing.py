"""OpenTelemetry traces, off unless an OTLP endpoint is configured (HEMISPHERE_OTLP_ENDPOINT
or OTEL_EXPORTER_OTLP_ENDPOINT, read by Settings like every other setting).

A trace is per process what OpenTelemetry makes it: one global tracer provider, installed
once. Spans: the HTTP request (hemisphere.http.telemetry), each resolver that is not a plain
attribute read (ResolverSpans), each AWS call (adapters.tracing), each saga step a worker runs
(workflows.worker) and each stream publication. The W3C trace context crosses processes in
the saga's input (so every task message of it), in EventBridge events, and in the stream
publisher's POSTs; see docs/decisions.md for what does not carry it yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from graphql import GraphQLResolveInfo
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from strawberry.extensions import SchemaExtension
from strawberry.extensions.tracing.utils import should_skip_tracing
from strawberry.utils.await_maybe import await_maybe

from hemisphere.settings import Settings

log = logging.getLogger(__name__)

TRACER_NAME = "hemisphere"


def tracer_for(settings: Settings) -> trace.Tracer | None:
    """The tracer of this process, or None when tracing is off: no OTLP endpoint configured
    and no SDK tracer provider installed (a test may install one with its own exporter)."""
    if settings.otlp_endpoint is not None:
        _install_otlp(settings.otlp_endpoint, settings.service_name, settings.region)
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        return None
    return provider.get_tracer(TRACER_NAME)


def _install_otlp(endpoint: str, service: str, region: str) -> None:
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return  # installed by an earlier app of this process
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "cloud.region": region})
    )
    # OTEL_EXPORTER_OTLP_ENDPOINT names the collector; traces go to its /v1/traces (the
    # specification's rule), unless the URL already names a path.
    path = urlsplit(endpoint).path
    url = endpoint if path not in ("", "/") else endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    trace.set_tracer_provider(provider)
    log.info("tracing: exporting spans to %s", url)


def resolver_spans(tracer: trace.Tracer) -> Callable[[], SchemaExtension]:
    """A Strawberry extension factory: a span per resolver that does work (plain attribute
    reads and introspection have none: thousands per request, each worth nothing)."""

    class ResolverSpans(SchemaExtension):
        # Not `async def`: a field without a span resolves as it would without the extension
        # (a sync attribute read stays sync instead of becoming a coroutine per field).
        def resolve(
            self,
            _next: Callable[..., Any],
            root: Any,
            info: GraphQLResolveInfo[Any],
            *args: Any,
            **kwargs: Any,
        ) -> Any:
            if should_skip_tracing(_next, info):
                return _next(root, info, *args, **kwargs)
            return _traced(_next, root, info, *args, **kwargs)

    async def _traced(
        _next: Callable[..., Any],
        root: Any,
        info: GraphQLResolveInfo[Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        name = f"{info.parent_type.name}.{info.field_name}"
        with tracer.start_as_current_span(name, attributes={"graphql.field.path": _path(info)}):
            return await await_maybe(_next(root, info, *args, **kwargs))

    return ResolverSpans


def _path(info: GraphQLResolveInfo[Any]) -> str:
    return ".".join(str(key) for key in info.path.as_list())
