"""A Lambda authorizer's `deniedFields`: each denied field the request selects resolves to null
with AppSync's error (ForbiddenFieldError: "Not Authorized to access FIELD on type TYPE"), the
rest of the response intact; a denied mutation field never runs; a subscription that selects
a denied field is refused when it subscribes.

Where: in the executor graphql-core builds for each operation (Strawberry's, subclassed), once
the document is valid and its operation chosen. The read path is hot: a schema extension
costs every request its hooks (measured: ~5-10% of a `product(id)` request), a resolver
middleware every field. Here a caller without denied fields costs one attribute check per
operation. For one with denied fields, the operation's selection (fragments included) is
walked once: selecting none changes nothing; otherwise a subscription gets the refusal as a
pre-execution error (every transport answers it with its `error` message, before anything is
acknowledged), and a query or mutation runs with a middleware that refuses the denied fields
before their resolvers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
)
from graphql.execution.middleware import MiddlewareManager
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from domain.auth import Caller
from domain.errors import ForbiddenFieldError


def denied_selections(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    denied: frozenset[str],
) -> list[tuple[FieldNode, str, str]]:
    """(node, type, field) of every denied field `operation` selects."""
    found: list[tuple[FieldNode, str, str]] = []
    visited: set[str] = set()

    def walk(parent: GraphQLNamedType | None, selections: SelectionSetNode) -> None:
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if parent is None or name.startswith("__"):
                    continue
                if f"{parent.name}.{name}" in denied:
                    found.append((selection, parent.name, name))
                fields = getattr(parent, "fields", {})
                if name in fields and selection.selection_set is not None:
                    walk(get_named_type(fields[name].type), selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                walk(
                    schema.get_type(condition.name.value) if condition else parent,
                    selection.selection_set,
                )
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                if fragment is not None and fragment.name.value not in visited:
                    visited.add(fragment.name.value)
                    walk(
                        schema.get_type(fragment.type_condition.name.value),
                        fragment.selection_set,
                    )

    walk(schema.get_root_type(operation.operation), operation.selection_set)
    return found


def refusing(denied: frozenset[str]) -> Callable[..., Any]:
    """A graphql-core middleware: a denied field fails before its resolver runs."""

    def middleware(next_: Callable[..., Any], root: Any, info: Any, **args: Any) -> Any:
        parent = info.parent_type.name
        if f"{parent}.{info.field_name}" in denied:
            raise ForbiddenFieldError(info.field_name, parent)
        return next_(root, info, **args)

    return middleware


class DeniedFieldsExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, applying the caller's denied fields (install it as the schema's
    `execution_context_class`)."""

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
        caller = getattr(context_value, "caller", None)
        if isinstance(built, list) or not isinstance(caller, Caller) or not caller.denied_fields:
            return built
        denied = caller.denied_fields
        found = denied_selections(schema, built.operation, built.fragment_definitions, denied)
        if not found:
            return built
        if built.operation.operation is OperationType.SUBSCRIPTION:
            node, type_name, field_name = found[0]
            error = ForbiddenFieldError(field_name, type_name)
            return [GraphQLError(error.message, node, original_error=error)]
        others = built.middleware_manager.middlewares if built.middleware_manager else ()
        built.middleware_manager = MiddlewareManager(refusing(denied), *others)
        return built
