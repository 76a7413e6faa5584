"""AppSync's request limits, checked on the parsed document before it is validated or run:
query depth (`queryDepthLimit`), resolver count (`resolverCountLimit`) and introspection
(`introspectionConfig`).

Why before validation: graphql-core's validation compares every pair of same-named fields
(OverlappingFieldsCanBeMerged), so 10,000 aliases of `region { epoch }` kept the process busy
for seconds before anything ran. Counting is linear in the document: each fragment's cost is
computed once and multiplied wherever it is spread, so a fragment bomb (fragments that spread
the next one twice, n levels deep) is priced at 2**n without being expanded.

The resolver count is the number of field resolutions the request can cause, as AppSync
counts resolvers invoked: a field under a list counts once per element, and a paginated
connection's `items` list holds up to its `limit` argument (20 when absent, at most 100, as
the resolvers cap it); other lists are priced at LIST_ESTIMATE elements. So 200 aliases of
`products(limit: 100) { items { id name } }` cost 200 * (1 + 1 + 100 * 2) = 40,400 and are
refused by AppSync's default limit of 10,000, while every query of the contract that a client
would write costs well under it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    parse,
)

# AppSync's defaults: no depth limit (0), 10,000 resolvers, introspection enabled.
DEFAULT_RESOLVER_COUNT_LIMIT = 10_000
# Pagination as the resolvers apply it (resolvers/pagination.py).
DEFAULT_PAGE = 20
MAX_PAGE = 100
# Elements assumed for a list that is not a page (an order's lines, its history).
LIST_ESTIMATE = 10
# Tokens graphql-core reads before giving up. GraphiQL's introspection query has ~700 and a
# large application query a few thousand; 10,000 aliases of `region { epoch }` has 60,000
# and cost seconds to parse alone: refused after the first 15,000.
MAX_TOKENS = 15_000
_INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """0 means no limit, as in AppSync's API configuration."""

    depth: int = 0
    resolvers: int = DEFAULT_RESOLVER_COUNT_LIMIT
    introspection: bool = True


@dataclass(frozen=True, slots=True)
class LimitExceeded:
    """Why a request is refused before it runs (an AppSync validation error)."""

    message: str


def check_limits(
    schema: GraphQLSchema,
    query: str,
    operation_name: str | None,
    limits: QueryLimits,
    variables: Mapping[str, object] | None = None,
) -> LimitExceeded | None:
    """The first limit the operation to run breaks, or None. A document that does not parse
    (or selects no known operation) is left to the executor, which reports it in its shape."""
    try:
        document = _parse(query)
    except _Refused as refused:
        return LimitExceeded(refused.message)
    if document is None:
        return None
    operation = _operation(document, operation_name)
    if operation is None:
        return None
    root = _root_type(schema, operation)
    if root is None:
        return None
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    measure = _Measure(schema, fragments, limits, variables or {})
    try:
        depth, resolvers = measure.selection(operation.selection_set, root, (), 1, None)
    except _Refused as refused:
        return LimitExceeded(refused.message)
    if limits.depth and depth > limits.depth:
        return LimitExceeded(
            f"The query has a depth of {depth}, over this API's limit of {limits.depth}."
        )
    if limits.resolvers and resolvers > limits.resolvers:
        return LimitExceeded(
            f"The query may invoke {resolvers} resolvers, over this API's limit of "
            f"{limits.resolvers}."
        )
    return None


@lru_cache(maxsize=512)
def _parse(query: str) -> DocumentNode | None:
    try:
        return parse(query, max_tokens=MAX_TOKENS)
    except GraphQLSyntaxError as error:
        if "more than" in error.message and "tokens" in error.message:
            raise _Refused(
                f"The query has more than {MAX_TOKENS} tokens, over this API's limit."
            ) from None
        return None


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)


def _root_type(
    schema: GraphQLSchema, operation: OperationDefinitionNode
) -> GraphQLObjectType | None:
    return {
        OperationType.QUERY: schema.query_type,
        OperationType.MUTATION: schema.mutation_type,
        OperationType.SUBSCRIPTION: schema.subscription_type,
    }[operation.operation]


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Measure:
    """Depth and resolver count of selection sets, each fragment measured once per type."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        limits: QueryLimits,
        variables: Mapping[str, object],
    ) -> None:
        self._schema = schema
        self._fragments = fragments
        self._limits = limits
        self._variables = variables
        self._measured: dict[tuple[str, str, int | None], tuple[int, int]] = {}

    def selection(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLObjectType | GraphQLInterfaceType,
        spreading: tuple[str, ...],
        depth: int,
        page: int | None,
    ) -> tuple[int, int]:
        """(deepest level reached, resolver count) of `selection_set` at `depth`; `page`: the
        page size when this is the selection of a paginated field (its lists hold a page)."""
        deepest, count = depth - 1, 0
        for node in selection_set.selections if selection_set else ():
            if isinstance(node, FieldNode):
                level, cost = self._field(node, parent, spreading, depth, page)
            elif isinstance(node, InlineFragmentNode):
                inner = self._type_condition(node, parent)
                level, cost = self.selection(node.selection_set, inner, spreading, depth, page)
            elif isinstance(node, FragmentSpreadNode):
                level, cost = self._spread(node.name.value, parent, spreading, depth, page)
            else:  # pragma: no cover - the grammar has no other selection
                continue
            deepest, count = max(deepest, level), count + cost
            self._guard(count)
        return deepest, count

    def _field(
        self,
        node: FieldNode,
        parent: GraphQLObjectType | GraphQLInterfaceType,
        spreading: tuple[str, ...],
        depth: int,
        page: int | None,
    ) -> tuple[int, int]:
        name = node.name.value
        if name in _INTROSPECTION_FIELDS and not self._limits.introspection:
            raise _Refused(f"GraphQL introspection is not allowed, but the query contained {name}.")
        if name == "__typename":
            return depth, 0
        definition = parent.fields.get(name)
        if name in _INTROSPECTION_FIELDS:
            return self._introspection(node, depth)
        if definition is None:
            return depth, 1  # validation names the unknown field
        inner_type = get_named_type(definition.type)
        if not isinstance(inner_type, GraphQLObjectType | GraphQLInterfaceType):
            return depth, 1
        paginated = "limit" in definition.args
        own_page = page_size(node, self._variables) if paginated else None
        level, cost = self.selection(node.selection_set, inner_type, spreading, depth + 1, own_page)
        return level, 1 + cost * _elements(definition.type, page)

    def _introspection(self, node: FieldNode, depth: int) -> tuple[int, int]:
        """Introspection types are recursive (`ofType`); count the document's fields plainly."""

        def walk(selection_set: SelectionSetNode | None, level: int) -> tuple[int, int]:
            deepest, count = level, 1
            for child in selection_set.selections if selection_set else ():
                if isinstance(child, FieldNode):
                    inner_level, inner = walk(child.selection_set, level + 1)
                elif isinstance(child, FragmentSpreadNode | InlineFragmentNode):
                    definition = (
                        self._fragments.get(child.name.value)
                        if isinstance(child, FragmentSpreadNode)
                        else child
                    )
                    if definition is None:
                        continue
                    inner_level, inner = walk(definition.selection_set, level)
                    inner -= 1
                else:  # pragma: no cover
                    continue
                deepest, count = max(deepest, inner_level), count + inner
                self._guard(count)
            return deepest, count

        return walk(node.selection_set, depth)

    def _spread(
        self,
        name: str,
        parent: GraphQLObjectType | GraphQLInterfaceType,
        spreading: tuple[str, ...],
        depth: int,
        page: int | None,
    ) -> tuple[int, int]:
        fragment = self._fragments.get(name)
        if fragment is None or name in spreading:
            return depth - 1, 0  # validation reports unknown and cyclic fragments
        inner = self._type_condition(fragment, parent)
        key = (name, inner.name, page)
        if key not in self._measured:
            self._measured[key] = self.selection(
                fragment.selection_set, inner, (*spreading, name), 1, page
            )
        fragment_depth, cost = self._measured[key]
        return depth - 1 + fragment_depth, cost

    def _type_condition(
        self,
        node: InlineFragmentNode | FragmentDefinitionNode,
        parent: GraphQLObjectType | GraphQLInterfaceType,
    ) -> GraphQLObjectType | GraphQLInterfaceType:
        if node.type_condition is None:
            return parent
        named = self._schema.get_type(node.type_condition.name.value)
        return named if isinstance(named, GraphQLObjectType | GraphQLInterfaceType) else parent

    def _guard(self, count: int) -> None:
        # Stop counting as soon as the answer is known: a bomb's count can be astronomical.
        if self._limits.resolvers and count > self._limits.resolvers:
            raise _Refused(
                f"The query may invoke more than {self._limits.resolvers} resolvers, this "
                "API's limit."
            )


def _elements(field_type: GraphQLOutputType, page: int | None) -> int:
    """How many times a field's selection runs: once, or once per list element (a page's
    worth inside a paginated field, LIST_ESTIMATE elsewhere)."""
    if isinstance(field_type, GraphQLNonNull):
        field_type = field_type.of_type
    if not isinstance(field_type, GraphQLList):
        return 1
    return page if page is not None else LIST_ESTIMATE


def page_size(node: FieldNode, variables: Mapping[str, object]) -> int:
    """The `limit` a paginated field asks for, as the resolvers read it."""
    for argument in node.arguments or ():
        if argument.name.value != "limit":
            continue
        value = argument.value
        if isinstance(value, IntValueNode):
            return max(1, min(int(value.value), MAX_PAGE))
        if isinstance(value, VariableNode):
            given = variables.get(value.name.value)
            if given is None:
                return DEFAULT_PAGE
            if isinstance(given, int):
                return max(1, min(given, MAX_PAGE))
        return MAX_PAGE  # anything else is refused by validation; price it high
    return DEFAULT_PAGE
