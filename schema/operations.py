"""Which operation of a document runs, as the GraphQL specification says (GetOperation):
the one named by `operationName`; without a name, the document's only operation. Strawberry
raises an internal error for an unknown name and silently runs the first of several
operations; callers ask here first and answer a client error instead."""

from __future__ import annotations

from functools import lru_cache

from graphql import GraphQLSyntaxError, OperationDefinitionNode, parse

from schema.limits import MAX_TOKENS


@lru_cache(maxsize=1024)
def _operations(query: str) -> tuple[tuple[str | None, str], ...] | None:
    """The (name, type) of the document's operations (None for an anonymous one's name); None
    when the document does not parse (the executor reports the syntax error in its own
    shape)."""
    try:
        # Bounded like schema.limits: an oversized document is refused there, not parsed here.
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLSyntaxError:
        return None
    return tuple(
        (d.name.value if d.name else None, d.operation.value)
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    )


def operation_type(query: str, operation_name: str | None) -> str | None:
    """ "query", "mutation" or "subscription": what the selected operation is; None when the
    document does not parse or no operation can be selected."""
    operations = _operations(query)
    if operations is None:
        return None
    for name, kind in operations:
        if operation_name is None or name == operation_name:
            return kind if operation_name is not None or len(operations) == 1 else None
    return None


def operation_selection_error(query: str, operation_name: str | None) -> str | None:
    """Why no operation can be selected, or None when one can."""
    operations = _operations(query)
    if operations is None:
        return None
    names = [name for name, _ in operations]
    if operation_name is None:
        if len(names) > 1:
            return "Must provide operation name if query contains multiple operations."
        return None
    if operation_name not in names:
        return f"Unknown operation named '{operation_name}'."
    return None
