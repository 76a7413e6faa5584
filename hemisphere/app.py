"""The ASGI app: GraphQL over HTTP on /graphql, the probes (/healthz: the process is alive;
/readyz: it should get traffic), and the lifespan that brings the backends up (see bootstrap)
before the first request and down after the last."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace

import strawberry
from opentelemetry.trace import Tracer
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from domain.auth import Caller
from hemisphere.http.endpoint import GraphQLHTTP
from hemisphere.http.executor import HemisphereExecutor
from hemisphere.http.graphiql import STATIC_DIR, STATIC_PATH, graphiql_page
from hemisphere.http.rate_limits import Throttle
from hemisphere.http.realtime_options import RealtimeOptions
from hemisphere.http.telemetry import TelemetryMiddleware
from hemisphere.http.websocket_routes import WebSocketEndpoints, WebSocketsFirst
from hemisphere.identity import authenticator_for
from hemisphere.local_issuer import LocalIssuer
from hemisphere.metrics import ApiMetrics
from hemisphere.metrics_http import metrics_routes, serving_metrics
from hemisphere.readiness import Readiness, Report
from hemisphere.runtime import Runtime
from hemisphere.settings import Settings
from hemisphere.throttling import open_throttle
from hemisphere.tracing import resolver_spans, tracer_for
from resolvers.context import Context
from resolvers.pagination import PageTokens
from resolvers.schema import build_schema
from schema.limits import QueryLimits

RuntimeFactory = Callable[[Settings], AbstractAsyncContextManager[Runtime]]


def _playground(settings: Settings, api_key: str | None, customer: str | None) -> Callable[[], str]:
    issuer = (
        LocalIssuer(settings.data_dir, settings.oidc_issuer)
        if customer is not None and settings.local_issuer and settings.oidc_issuer is not None
        else None
    )

    def page() -> str:
        token = issuer.token(customer) if issuer is not None and customer is not None else None
        return graphiql_page(api_key, token)

    return page


def create_app(
    settings: Settings,
    *,
    runtime_factory: RuntimeFactory | None = None,
    graphiql_api_key: str | None = None,
    graphiql_customer: str | None = None,
    realtime: RealtimeOptions | None = None,
    readiness: Readiness | None = None,
) -> Starlette:
    """`graphiql_api_key` prefills GraphiQL's headers, and `graphiql_customer` a token of
    that customer from the development issuer (a fresh one each time the page loads): for the
    local default only.
    `runtime_factory` defaults to bootstrap's, which wires the real backends. `realtime`
    tunes the WebSocket endpoints (keep-alive interval, server-side filter rules).
    `readiness` is shared with whoever stops the process (it sets `draining`)."""
    if runtime_factory is None:
        from hemisphere.bootstrap import start_runtime

        runtime_factory = start_runtime
    token_secret = settings.token_secret
    if token_secret is None:
        # Tokens would not survive a restart nor cross instances; serve persists a secret.
        token_secret = secrets.token_urlsafe(32)
        settings = replace(settings, token_secret=token_secret)
    tokens = PageTokens(token_secret)
    schema = build_schema()
    # A Lambda authorizer's deniedFields (one attribute check for every other caller), and
    # subscription events executed once for all equal subscribers.
    schema.execution_context_class = HemisphereExecutor
    runtime: Runtime | None = None
    metrics, tracer = _telemetry(settings, schema, lambda: runtime)

    def make_context(caller: Caller) -> Context:
        assert runtime is not None, "a request arrived before the lifespan started"
        return Context(caller, runtime.ports, tokens)

    authenticator, issuer_routes = authenticator_for(settings)
    limits = QueryLimits(
        depth=settings.query_depth_limit,
        resolvers=settings.resolver_count_limit,
        introspection=settings.introspection,
    )
    throttle: Throttle | None = None
    endpoint = GraphQLHTTP(
        schema,
        authenticator,
        make_context,
        _playground(settings, graphiql_api_key, graphiql_customer),
        limits=limits,
        max_body_bytes=settings.max_request_bytes,
        throttle=lambda: throttle,
        read_cache=lambda: runtime.read_cache if runtime is not None else None,
    )
    realtime = replace(realtime or RealtimeOptions(), limits=limits)

    probes = readiness or Readiness()
    role = "primary" if settings.region == settings.primary_region else "secondary"

    async def alive(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def ready(request: Request) -> Response:
        report = probes.report()
        if runtime is None and "started" not in report.checks:
            report = Report(False, {**report.checks, "started": "stopped"})
        return JSONResponse(
            {
                "status": "ready" if report.ready else "unready",
                "region": settings.region,
                "role": role,
                "checks": report.checks,
            },
            status_code=200 if report.ready else 503,
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal runtime, throttle
        async with runtime_factory(settings) as started, open_throttle(settings) as throttle:
            probes.watch(started.probes)
            async with probes.running(), serving_metrics(settings, metrics, started):
                runtime = started
                try:
                    yield
                finally:
                    runtime = None
                    await authenticator.aclose()

    return WebSocketsFirst(
        websockets=WebSocketEndpoints(schema, authenticator, make_context, realtime),
        routes=[
            Route("/graphql", endpoint.post, methods=["POST"]),
            Route("/graphql", endpoint.get, methods=["GET"]),
            *issuer_routes,
            Route("/healthz", alive, methods=["GET"]),
            Route("/readyz", ready, methods=["GET"]),
            # The probe's first name, kept for existing checks: it means ready, as it did.
            Route("/health", ready, methods=["GET"]),
            *metrics_routes(settings, metrics),
            Mount(STATIC_PATH, app=StaticFiles(directory=STATIC_DIR), name="graphiql-static"),
        ],
        lifespan=lifespan,
        middleware=[Middleware(TelemetryMiddleware, metrics=metrics, tracer=tracer)],
    )


def _telemetry(
    settings: Settings, schema: strawberry.Schema, runtime: Callable[[], Runtime | None]
) -> tuple[ApiMetrics | None, Tracer | None]:
    """The app's metrics (None: /metrics is off) and tracer (None: tracing is off); with a
    tracer, the resolvers get spans too."""
    metrics = None
    if settings.metrics_enabled:
        mutations = schema._schema.mutation_type
        metrics = ApiMetrics(mutations.fields if mutations is not None else ())

        def broker() -> object | None:
            started = runtime()
            return started.ports.broker if started is not None else None

        metrics.watch_broker(broker)
    tracer = tracer_for(settings)
    if tracer is not None:
        schema.extensions = (*schema.extensions, resolver_spans(tracer))
    return metrics, tracer
