"""The executor every operation runs in: Strawberry's, with a Lambda authorizer's denied fields
applied (lambda_authorizer_fields) and subscription events executed once for every subscriber
that would get the same answer (subscriptions.shared_events).

A subscription's executor gets a share key when it is built (once per subscription): its
document, operation, variables and the caller's read scope. Each event's executor is a copy
that knows its payload; executing it asks the shared results first. Without a key (variables
that do not serialize, say) every event executes as before.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, cast

import orjson
from graphql import GraphQLSchema, OperationType, print_ast

from domain.auth import Caller, read_scope
from hemisphere.http.lambda_authorizer_fields import DeniedFieldsExecutor
from subscriptions.shared_events import SHARED_EXECUTIONS

_NO_EVENT = object()


class HemisphereExecutor(DeniedFieldsExecutor):
    _share_key: Hashable | None = None
    _event: object = _NO_EVENT

    @classmethod
    def build(
        cls,
        schema: GraphQLSchema,
        document: Any,
        root_value: Any = None,
        context_value: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        built = super().build(schema, document, root_value, context_value, *args, **kwargs)
        if isinstance(built, list) or built.operation.operation is not OperationType.SUBSCRIPTION:
            return built
        caller = getattr(context_value, "caller", None)
        if isinstance(caller, Caller):
            built._share_key = _share_key(built, document, caller)
        return built

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = cast("HemisphereExecutor", super().build_per_event_executor(payload))
        executor._event = payload
        return executor

    def execute_operation(self, *args: Any, **kwargs: Any) -> Any:
        key, event = self._share_key, self._event
        if key is None or event is _NO_EVENT:
            return super().execute_operation(*args, **kwargs)

        def execute() -> Any:
            return super(HemisphereExecutor, self).execute_operation(*args, **kwargs)

        return SHARED_EXECUTIONS.result(event, key, execute, self.is_awaitable)


def _share_key(built: Any, document: Any, caller: Caller) -> Hashable | None:
    """What an event's answer depends on besides the event; None if it cannot be keyed."""
    location = getattr(built.operation, "loc", None)
    source = location.source.body if location is not None else print_ast(document)
    name = built.operation.name.value if built.operation.name else None
    try:
        # As text: orjson's bytes keep a 4 KB buffer each, and the key lives as long as the
        # subscription (bench/idle_memory.py).
        variables = orjson.dumps(
            built.variable_values.coerced, option=orjson.OPT_SORT_KEYS
        ).decode()
    except (TypeError, AttributeError):
        return None
    return (source, name, variables, read_scope(caller))
