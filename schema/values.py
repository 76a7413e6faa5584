"""Small conversions between what Strawberry hands a resolver and what the domain takes: the
contract's conventions for arguments and results, shared by the Query and Mutation resolvers
(resolvers/) and the Subscription fields (subscriptions/)."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from strawberry import UNSET

T = TypeVar("T")

# Optional arguments default to UNSET rather than None, so the SDL shows `limit: Int` as the
# contract does (a None default would print `limit: Int = null`).
OMITTED: Any = UNSET


def given(value: T | None) -> T | None:
    """The argument's value, or None when the caller left it out."""
    return None if value is UNSET else value


def as_graphql(value: object, graphql_type: type[T]) -> T:
    """A domain snapshot where the schema names its GraphQL type `graphql_type`: Strawberry
    resolves fields by attribute name, so the snapshot serves as it is (no copy per
    request). The snapshot and the type have the same fields; tests hold them together."""
    return cast(T, value)
