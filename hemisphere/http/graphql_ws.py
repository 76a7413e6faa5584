"""`graphql-transport-ws` and the legacy `graphql-ws` on /graphql, through Strawberry's own
protocol handlers (for Apollo, urql, the graphql-ws client). HTTP stays on our endpoint.

Authentication is per connection, at `connection_init`: the API key (or IAM headers, signed
as AppSync's connect) in the init payload, since browsers cannot set WebSocket headers, or
else in the upgrade request's headers. A connection that proves nothing is closed without an
acknowledgement: graphql-transport-ws closes with 4403; legacy graphql-ws sends its
`connection_error` first.

An operation's `extensions` (where a client puts an enhanced filter) reach the schema too:
Strawberry's handlers pass only query, variables and operation name, so each handler marks
the extensions of the operation it is starting in a context variable, which the task it
creates for the operation copies, and the schema wrapper below hands them on.

Bad input gets each protocol's answer instead of an unhandled exception: a frame that is not
a message object closes graphql-transport-ws with 4400 and is an `error` on legacy
graphql-ws; a document that does not parse, or whose operation cannot be selected, is an
`error` message for that operation (Strawberry would raise or close the socket); and every
error travels in AppSync's shape (`errorType` and the rest), as on the other endpoints.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError, parse
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.schema import BaseSchema
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyConnectionInitMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage
from strawberry.types.execution import ExecutionResult, PreExecutionError

from domain.auth import Caller
from domain.errors import BadRequestError, UnauthorizedError
from hemisphere.http.authn import NOT_AUTHORIZED, Authenticator
from hemisphere.http.realtime_auth import authenticate_connection
from hemisphere.http.realtime_options import RealtimeOptions
from schema.errors import format_error
from schema.limits import QueryLimits, check_limits
from schema.operations import operation_selection_error
from subscriptions.root import SubscriptionRoot

_OPERATION_EXTENSIONS: ContextVar[dict[str, Any] | None] = ContextVar(
    "operation_extensions", default=None
)
_CREDENTIALS = ("x-api-key", "authorization")


@dataclass(frozen=True)
class PendingConnection:
    """The context of a connection until `connection_init` proves who it is."""

    headers: Mapping[str, str]


class _AppSyncShapedError(GraphQLError):
    """A GraphQLError that Strawberry's handlers format (`.formatted`) in AppSync's shape."""

    def __init__(self, error: GraphQLError) -> None:
        super().__init__(
            error.message,
            error.nodes,
            error.source,
            error.positions,
            error.path,
            error.original_error,
            error.extensions,
        )
        self._shaped = format_error(error)

    @property
    def formatted(self) -> Any:
        return self._shaped


def _shaped(result: ExecutionResult) -> ExecutionResult:
    if result.errors:
        result.errors = [_AppSyncShapedError(e) for e in result.errors]
    return result


async def _refused(error: GraphQLError) -> AsyncGenerator[ExecutionResult, None]:
    yield PreExecutionError(data=None, errors=[_AppSyncShapedError(error)])


async def _shaped_stream(
    results: AsyncIterator[ExecutionResult],
) -> AsyncGenerator[ExecutionResult, None]:
    try:
        async for result in results:
            yield _shaped(result)
    finally:
        aclose = getattr(results, "aclose", None)
        if aclose is not None:
            await aclose()


def _document_error(
    schema: strawberry.Schema,
    limits: QueryLimits,
    query: object,
    operation_name: object,
    variables: object,
) -> GraphQLError | None:
    """Why the document cannot run at all, found before Strawberry (which raises on a syntax
    error and on an unknown operation instead of answering), limits included."""
    if not isinstance(query, str):
        return GraphQLError("The operation has no query string.")
    name = operation_name if isinstance(operation_name, str) else None
    exceeded = check_limits(
        schema._schema, query, name, limits, variables if isinstance(variables, dict) else None
    )
    if exceeded is not None:
        return GraphQLError(exceeded.message)
    try:
        parse(query)
    except GraphQLSyntaxError as exc:
        return exc
    unselectable = operation_selection_error(query, name)
    if unselectable is not None:
        return GraphQLError(unselectable, original_error=BadRequestError(unselectable))
    return None


class _ForwardExtensions:
    """The schema as Strawberry's handlers see it, with the operation's extensions added and
    its errors in AppSync's shape."""

    def __init__(self, schema: strawberry.Schema, limits: QueryLimits) -> None:
        self._schema = schema
        self._limits = limits

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        return await self._run(self._schema.stream, *args, **kwargs)

    async def subscribe(self, *args: Any, **kwargs: Any) -> Any:
        return await self._run(self._schema.subscribe, *args, **kwargs)

    async def _run(self, run: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        query = args[0] if args else kwargs.get("query")
        refusal = _document_error(
            self._schema,
            self._limits,
            query,
            kwargs.get("operation_name"),
            args[1] if len(args) > 1 else kwargs.get("variable_values"),
        )
        if refusal is not None:
            return _refused(refusal)
        kwargs["operation_extensions"] = _OPERATION_EXTENSIONS.get()
        results = await run(*args, **kwargs)
        if isinstance(results, ExecutionResult):
            return _shaped(results)
        return _shaped_stream(results)


def _extensions_of(payload: object) -> dict[str, Any] | None:
    extensions = payload.get("extensions") if isinstance(payload, dict) else None
    return extensions if isinstance(extensions, dict) else None


def _is_message(message: object) -> bool:
    return isinstance(message, dict) and isinstance(message.get("type"), str)


class _TransportWSHandler(BaseGraphQLTransportWSHandler[Any, SubscriptionRoot]):
    async def handle_message(self, message: Any) -> None:
        if not _is_message(message):
            await self.handle_invalid_message("Invalid message: expected an object with a type")
            return
        await super().handle_message(message)

    @staticmethod
    def _get_pre_execution_close_reason(error: GraphQLError) -> str | None:
        # An operation that cannot run is that operation's `error`, not the connection's end:
        # the client's other subscriptions go on.
        return None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        # Strawberry itself refuses a second connection_init; only the first is checked.
        if not self.connection_init_received:
            context = await cast(GraphQLWebSockets, self.view).context_for(
                self.context, message.get("payload")
            )
            if context is None:
                await self.websocket.close(code=4403, reason="Forbidden")
                return
            self.context = context
        await super().handle_connection_init(message)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        token = _OPERATION_EXTENSIONS.set(_extensions_of(message.get("payload")))
        try:
            await super().handle_subscribe(message)
        finally:
            _OPERATION_EXTENSIONS.reset(token)


class _LegacyWSHandler(BaseGraphQLWSHandler[Any, SubscriptionRoot]):
    async def handle_message(self, message: Any) -> None:
        if not _is_message(message):
            # subscriptions-transport-ws answers an unreadable message with an `error`.
            await self.send_message(
                cast(
                    Any,
                    {
                        "type": "error",
                        "payload": {
                            "errorType": "BadRequestException",
                            "message": "Invalid message: expected an object with a type.",
                        },
                    },
                )
            )
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: LegacyConnectionInitMessage) -> None:
        context = await cast(GraphQLWebSockets, self.view).context_for(
            self.context, message.get("payload")
        )
        if context is None:
            await self.send_message(
                {"type": "connection_error", "payload": {"message": NOT_AUTHORIZED}}
            )
            await self.websocket.close(code=4403, reason="Forbidden")
            return
        self.context = context
        await super().handle_connection_init(message)

    async def handle_start(self, message: StartMessage) -> None:
        token = _OPERATION_EXTENSIONS.set(_extensions_of(message.get("payload")))
        try:
            await super().handle_start(message)
        finally:
            _OPERATION_EXTENSIONS.reset(token)


class GraphQLWebSockets(GraphQL[Any, SubscriptionRoot]):
    """Strawberry's ASGI view, for WebSocket scopes only."""

    graphql_transport_ws_handler_class = _TransportWSHandler
    graphql_ws_handler_class = _LegacyWSHandler

    def __init__(
        self,
        schema: strawberry.Schema,
        authenticator: Authenticator,
        make_context: Callable[[Caller], object],
        options: RealtimeOptions,
    ) -> None:
        super().__init__(
            cast(BaseSchema, _ForwardExtensions(schema, options.limits)),
            graphql_ide=None,
            allow_queries_via_get=False,
            keep_alive=True,
            keep_alive_interval=options.keepalive_seconds,
            connection_init_wait_timeout=timedelta(seconds=options.init_timeout_seconds),
            # Any page may connect: credentials travel in connection_init, never in cookies,
            # so a cross-origin page gains nothing it could not do from anywhere.
            allowed_origins=["*"],
        )
        self._authenticator = authenticator
        self._make_context = make_context
        self._rules = options.filter_rules

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Any:
        return PendingConnection({k.lower(): v for k, v in request.headers.items()})

    async def get_root_value(self, request: Request | WebSocket) -> SubscriptionRoot:
        return SubscriptionRoot(rules=self._rules)

    async def context_for(self, pending: object, init_payload: object) -> object | None:
        """The connection's context once its credentials verify, else None."""
        headers: Mapping[str, str] = {}
        if isinstance(pending, PendingConnection):
            headers = pending.headers
        if isinstance(init_payload, dict):
            given = {k.lower(): v for k, v in init_payload.items() if isinstance(v, str)}
            if any(name in given for name in _CREDENTIALS):
                headers = given
        try:
            caller = await authenticate_connection(self._authenticator, headers, b"{}")
        except UnauthorizedError:
            return None
        return self._make_context(caller)
