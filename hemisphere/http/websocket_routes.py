"""Which protocol a WebSocket upgrade speaks, and the app that answers upgrades first.

`/graphql/realtime` is AppSync's real-time endpoint (Amplify JS v6 always connects there).
`/graphql` serves both AppSync clients and graphql-ws ones, and both use the subprotocol name
`graphql-ws`; an AppSync client is the one that brings AppSync's connection headers, in the
`header` query parameter (gql, older Amplify) or a `header-…` subprotocol.

The endpoints are called straight from the app, before its middleware and router: a
subscription connection lives for hours, and so does every frame of the call chain it was
dispatched through (the error and exception middleware, the telemetry, the router, the route:
3 KB of an idle connection, bench/idle_memory.py). None of them acts on these WebSockets: the
telemetry is for HTTP requests, and the endpoints raise no HTTPException or WebSocketException
for the exception middleware to turn into a close. Other WebSocket paths go the usual way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import strawberry
from starlette._utils import get_route_path
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from domain.auth import Caller
from hemisphere.http.authn import Authenticator
from hemisphere.http.graphql_ws import GraphQLWebSockets
from hemisphere.http.realtime import AppSyncRealtime
from hemisphere.http.realtime_options import RealtimeOptions
from subscriptions.appsync_protocol import header_subprotocol


def is_appsync_upgrade(scope: Scope) -> bool:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    offered = list(scope.get("subprotocols") or [])
    return "header" in query or header_subprotocol(offered) is not None


class WebSocketEndpoints:
    """The endpoint of a WebSocket upgrade, by path (and for `/graphql`, by protocol)."""

    def __init__(
        self,
        schema: strawberry.Schema,
        authenticator: Authenticator,
        make_context: Callable[[Caller], object],
        options: RealtimeOptions,
    ) -> None:
        self._appsync = AppSyncRealtime(schema, authenticator, make_context, options)
        self._graphql_ws = GraphQLWebSockets(schema, authenticator, make_context, options)

    def endpoint(self, scope: Scope) -> ASGIApp | None:
        path = get_route_path(scope)
        if path == "/graphql/realtime":
            return self._appsync
        if path == "/graphql":
            return self._appsync if is_appsync_upgrade(scope) else self._graphql_ws
        return None


class WebSocketsFirst(Starlette):
    """Starlette, with `websockets`' endpoints called before anything else (see above)."""

    def __init__(self, *, websockets: WebSocketEndpoints, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._websockets = websockets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            endpoint = self._websockets.endpoint(scope)
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
