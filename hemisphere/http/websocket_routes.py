"""Which protocol a WebSocket upgrade speaks.

`/graphql/realtime` is AppSync's real-time endpoint (Amplify JS v6 always connects there).
`/graphql` serves both AppSync clients and graphql-ws ones, and both use the subprotocol name
`graphql-ws`; an AppSync client is the one that brings AppSync's connection headers, in the
`header` query parameter (gql, older Amplify) or a `header-…` subprotocol.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs

import strawberry
from starlette.routing import WebSocketRoute
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


class _GraphQLUpgrade:
    def __init__(self, appsync: ASGIApp, graphql_ws: ASGIApp) -> None:
        self._appsync = appsync
        self._graphql_ws = graphql_ws

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._appsync if is_appsync_upgrade(scope) else self._graphql_ws
        await app(scope, receive, send)


def websocket_routes(
    schema: strawberry.Schema,
    authenticator: Authenticator,
    make_context: Callable[[Caller], object],
    options: RealtimeOptions,
) -> list[WebSocketRoute]:
    appsync = AppSyncRealtime(schema, authenticator, make_context, options)
    graphql_ws = GraphQLWebSockets(schema, authenticator, make_context, options)
    return [
        WebSocketRoute("/graphql", _GraphQLUpgrade(appsync, graphql_ws)),
        WebSocketRoute("/graphql/realtime", appsync),
    ]
