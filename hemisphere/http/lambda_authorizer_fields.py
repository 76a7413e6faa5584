"""A Lambda authorizer's `deniedFields`: each denied field the request selects resolves to null
with AppSync's error (ForbiddenFieldError: "Not Authorized to access FIELD on type TYPE"), the
rest of the response intact; a denied mutation field never runs; a subscription that selects
a denied field is refused when it subscribes.

Why a schema extension that steps in only for such callers: the read path is hot, and a
resolver middleware would wrap every field of every request. Here a caller without denied
fields costs two hooks that return at once. For one with denied fields, the operation's
selection (fragments included) is walked once at validation; when it selects none, nothing
else changes; when it does, a subscription gets a validation error (so every transport
answers with its `error` message, before anything is acknowledged), and a query or mutation
is executed here with one middleware that refuses the denied fields (the execution Strawberry
would run, which then uses this result). That execution has no other resolver middleware:
resolver spans are not recorded for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from inspect import isawaitable
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    execute,
    get_named_type,
    get_operation_ast,
)
from graphql.execution.middleware import MiddlewareManager
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.types.graphql import OperationType

from domain.auth import Caller
from domain.errors import ForbiddenFieldError


def denied_selections(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    denied: frozenset[str],
) -> list[tuple[FieldNode, str, str]]:
    """(node, type, field) of every denied field the operation selects."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return []
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
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


def _denied_of(context: object) -> frozenset[str]:
    caller = getattr(context, "caller", None)
    return caller.denied_fields if isinstance(caller, Caller) else frozenset()


class DeniedFields(SchemaExtension):
    _selects_denied = False

    def on_validate(self) -> Iterator[None]:
        run = self.execution_context
        denied = _denied_of(run.context)
        if denied and run.graphql_document is not None:
            schema = run.schema._schema
            found = denied_selections(schema, run.graphql_document, run.operation_name, denied)
            self._selects_denied = bool(found)
            if found and run.operation_type is OperationType.SUBSCRIPTION:
                if run.pre_execution_errors is None:
                    # Validate now (Strawberry would, after this hook): an invalid document
                    # gets its validation errors, not this refusal.
                    run.pre_execution_errors = validate_document(
                        schema, run.graphql_document, run.validation_rules
                    )
                if not run.pre_execution_errors:
                    node, type_name, field_name = found[0]
                    error = ForbiddenFieldError(field_name, type_name)
                    run.pre_execution_errors = [
                        GraphQLError(error.message, node, original_error=error)
                    ]
        yield

    async def on_execute(self) -> AsyncIterator[None]:
        run = self.execution_context
        if self._selects_denied and run.result is None:
            assert run.graphql_document is not None
            result = execute(
                run.schema._schema,
                run.graphql_document,
                root_value=run.root_value,
                context_value=run.context,
                variable_values=run.variables,
                operation_name=run.operation_name,
                middleware=MiddlewareManager(refusing(_denied_of(run.context))),
                # As Strawberry runs it: its executor hands resolvers the coerced variables.
                executor_class=run.schema.execution_context_class,
                operation_extensions=run.operation_extensions,
            )
            run.result = await result if isawaitable(result) else result
        yield
