"""One AppSync real-time connection whose credentials were accepted: it answers the client's
messages and runs its subscriptions. Transport-free: it hands finished message texts to
`send` (which must not block) and knows no clock; hemisphere/http/realtime.py owns the
socket, the keep-alives and the bound on what may wait to be sent.

Each `start` is authorized on its own (its `payload.extensions.authorization`, as AppSync
does: one connection may carry subscriptions of several callers) and executed with the
project's schema and a context of its own, exactly as an HTTP request would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
import strawberry
from graphql import GraphQLError
from strawberry.types.execution import ExecutionResult

from domain.auth import Caller
from domain.errors import UnauthorizedError
from schema.errors import INTERNAL_MESSAGE, format_error
from schema.limits import QueryLimits, check_limits
from subscriptions import appsync_protocol as protocol
from subscriptions.delivery import FILTER_EXTENSION
from subscriptions.root import NO_RULES, FilterRule, SubscriptionRoot

log = logging.getLogger(__name__)

Send = Callable[[str], None]
# From a start's authorization headers and its `data` text (which an IAM signature covers).
Authorize = Callable[[Mapping[str, str], str], Awaitable[Caller]]
MakeContext = Callable[[Caller], object]


class AppSyncSession:
    def __init__(
        self,
        *,
        schema: strawberry.Schema,
        make_context: MakeContext,
        authorize: Authorize,
        send: Send,
        on_stream_end: Callable[[str], None],
        rules: Mapping[str, FilterRule] = NO_RULES,
        max_subscriptions: int = protocol.MAX_SUBSCRIPTIONS,
        limits: QueryLimits | None = None,
    ) -> None:
        """`on_stream_end(id)` runs when the broker ends a subscription the client did not
        stop: it drops subscribers that fall too far behind, so the connection is slow."""
        self._schema = schema
        self._make_context = make_context
        self._authorize = authorize
        self._send = send
        self._on_stream_end = on_stream_end
        self._rules = rules
        self._max_subscriptions = max_subscriptions
        self._limits = limits or QueryLimits()
        self._initialized = False
        self._subscriptions: dict[str, asyncio.Task[None]] = {}

    @property
    def subscription_count(self) -> int:
        return len(self._subscriptions)

    async def receive(self, text: str) -> None:
        try:
            message = protocol.parse_client_message(text)
        except protocol.ProtocolError as exc:
            self._emit(protocol.simple_error(exc.id, exc.error_type, exc.message))
            return
        if isinstance(message, protocol.ConnectionInit):
            self._initialized = True
            self._emit(protocol.connection_ack())
        elif isinstance(message, protocol.Start):
            await self._start(message)
        else:
            await self._stop(message.id)

    async def close(self) -> None:
        """Stop every subscription (the connection is gone)."""
        tasks = list(self._subscriptions.values())
        self._subscriptions.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _start(self, start: protocol.Start) -> None:
        refusal = self._refusal(start)
        if refusal is not None:
            self._emit(refusal)
            return
        assert start.authorization is not None
        try:
            caller = await self._authorize(start.authorization, start.data)
        except UnauthorizedError as exc:
            self._emit(protocol.simple_error(start.id, "UnauthorizedException", exc.message, 401))
            return
        self._subscriptions[start.id] = asyncio.create_task(self._run(start, caller))

    def _refusal(self, start: protocol.Start) -> dict[str, Any] | None:
        def refuse(error_type: str, message: str, code: int = 400) -> dict[str, Any]:
            return protocol.simple_error(start.id, error_type, message, code)

        if not self._initialized:
            return refuse("BadRequestException", 'Send "connection_init" before "start".')
        if start.id in self._subscriptions:
            return refuse("BadRequestException", f"Subscription {start.id} is already started.")
        if len(self._subscriptions) >= self._max_subscriptions:
            return refuse(
                "MaxSubscriptionsReachedError",
                f"Max number of {self._max_subscriptions} subscriptions reached",
            )
        if start.authorization is None:
            return refuse(
                "UnauthorizedException",
                'The "start" message has no payload.extensions.authorization.',
                401,
            )
        exceeded = check_limits(
            self._schema._schema, start.query, start.operation_name, self._limits, start.variables
        )
        if exceeded is not None:
            return refuse("ValidationError", exceeded.message)
        return None

    async def _run(self, start: protocol.Start, caller: Caller) -> None:
        id = start.id
        established = False

        def on_established() -> None:
            nonlocal established
            established = True
            self._emit(protocol.start_ack(id))

        stream = await self._schema.subscribe(
            start.query,
            variable_values=start.variables,
            context_value=self._make_context(caller),
            root_value=SubscriptionRoot(rules=self._rules, on_established=on_established),
            operation_name=start.operation_name,
            operation_extensions={FILTER_EXTENSION: list(start.filters)} if start.filters else None,
        )
        # The subscription may live for hours, without its `start` message: the raw request and
        # the authorization headers with their token (a kilobyte) are not read again.
        del start
        try:
            async for result in stream:
                if not established:
                    # Refused before it started: an invalid document, a field the caller may
                    # not read, a bad filter.
                    self._refuse(id, list(result.errors or ()))
                    return
                self._emit_data(id, result)
        except GraphQLError as exc:
            # A document that does not even parse escapes the stream instead of being yielded.
            self._refuse(id, [exc])
            return
        except Exception:
            log.exception("subscription %s failed", id)
            self._subscriptions.pop(id, None)
            self._emit(protocol.simple_error(id, "InternalFailure", INTERNAL_MESSAGE, 500))
            return
        finally:
            await stream.aclose()
        if self._subscriptions.pop(id, None) is not None:
            self._on_stream_end(id)

    def _refuse(self, id: str, errors: list[GraphQLError]) -> None:
        self._subscriptions.pop(id, None)
        self._emit(protocol.error(id, [format_error(e) for e in errors]))

    async def _stop(self, id: str) -> None:
        task = self._subscriptions.pop(id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._emit(protocol.complete(id))

    def _emit_data(self, id: str, result: ExecutionResult) -> None:
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [format_error(e) for e in result.errors]
        encoded = orjson.dumps(protocol.data(id, payload))
        if len(encoded) > protocol.MAX_PAYLOAD_BYTES:
            # AppSync drops a change whose message would exceed the limit; so do we, loudly.
            log.warning("dropped a %d-byte change for subscription %s: too large", len(encoded), id)
            return
        self._send(encoded.decode())

    def _emit(self, message: dict[str, Any]) -> None:
        self._send(orjson.dumps(message).decode())
