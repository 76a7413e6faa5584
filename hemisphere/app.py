"""The ASGI app: GraphQL over HTTP on /graphql, a health check, and the lifespan that brings
the backends up (see bootstrap) before the first request and down after the last."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from domain.auth import Caller
from hemisphere.http.authn import Authenticator
from hemisphere.http.endpoint import GraphQLHTTP
from hemisphere.http.graphiql import STATIC_DIR, STATIC_PATH, graphiql_page
from hemisphere.http.realtime_options import RealtimeOptions
from hemisphere.http.websocket_routes import websocket_routes
from hemisphere.runtime import Runtime
from hemisphere.settings import Settings
from resolvers.context import Context
from resolvers.schema import build_schema

RuntimeFactory = Callable[[Settings], AbstractAsyncContextManager[Runtime]]


def create_app(
    settings: Settings,
    *,
    runtime_factory: RuntimeFactory | None = None,
    graphiql_api_key: str | None = None,
    realtime: RealtimeOptions | None = None,
) -> Starlette:
    """`graphiql_api_key` prefills GraphiQL's headers: for the local default only.
    `runtime_factory` defaults to bootstrap's, which wires the real backends. `realtime`
    tunes the WebSocket endpoints (keep-alive interval, server-side filter rules)."""
    if runtime_factory is None:
        from hemisphere.bootstrap import start_runtime

        runtime_factory = start_runtime
    if settings.token_secret is None:
        # Tokens would not survive a restart nor cross instances; serve persists a secret.
        settings = _with_token_secret(settings, secrets.token_urlsafe(32))
    schema = build_schema()
    runtime: Runtime | None = None

    def make_context(caller: Caller) -> Context:
        assert runtime is not None, "a request arrived before the lifespan started"
        return Context(
            caller=caller,
            reader=runtime.reader,
            tokens=runtime.tokens,
            topology=runtime.topology,
            broker=runtime.broker,
            catalog=runtime.catalog,
            workflows=runtime.workflows,
            profiles=runtime.profiles,
        )

    authenticator = Authenticator(
        settings.api_keys, settings.iam_credentials, region=settings.region
    )
    endpoint = GraphQLHTTP(schema, authenticator, make_context, graphiql_page(graphiql_api_key))

    async def health(request: Request) -> Response:
        ready = runtime is not None
        return JSONResponse(
            {"status": "ok" if ready else "starting", "region": settings.region},
            status_code=200 if ready else 503,
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal runtime
        async with runtime_factory(settings) as started:
            runtime = started
            try:
                yield
            finally:
                runtime = None

    return Starlette(
        routes=[
            Route("/graphql", endpoint.post, methods=["POST"]),
            Route("/graphql", endpoint.get, methods=["GET"]),
            *websocket_routes(schema, authenticator, make_context, realtime or RealtimeOptions()),
            Route("/health", health, methods=["GET"]),
            Mount(STATIC_PATH, app=StaticFiles(directory=STATIC_DIR), name="graphiql-static"),
        ],
        lifespan=lifespan,
    )


def _with_token_secret(settings: Settings, secret: str) -> Settings:
    from dataclasses import replace

    return replace(settings, token_secret=secret)
