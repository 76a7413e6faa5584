"""Hold a subscriber's enhanced filter to the subscription's GraphQL type: every fieldName must
name fields of that type, and fields the caller may read. A filter on a field the caller may
not read would tell them its value one change at a time, so it is refused like the field."""

from __future__ import annotations

from collections.abc import Iterable

from strawberry.types.base import StrawberryContainer, StrawberryObjectDefinition
from strawberry.types.base import get_object_definition as definition_of
from strawberry.types.field import StrawberryField
from strawberry.utils.str_converters import to_camel_case

from domain.auth import AuthMode
from domain.errors import BadRequestError, ForbiddenFieldError
from schema.directives import modes_of
from subscriptions.filters import Filter, Path


def check_filter_fields(
    filters: Iterable[Filter], graphql_type: type, mode: AuthMode | None
) -> None:
    """BadRequestError for a fieldName the type does not have; ForbiddenFieldError for a field
    `mode` may not read (`mode` None: the server's own rule, which may filter on anything)."""
    root = definition_of(graphql_type, strict=True)
    for path in sorted({p for f in filters for p in f.paths}):
        _check_path(root, path, mode)


def _graphql_name(field: StrawberryField) -> str:
    return field.graphql_name or to_camel_case(field.python_name)


def _check_path(root: StrawberryObjectDefinition, path: Path, mode: AuthMode | None) -> None:
    definition: StrawberryObjectDefinition | None = root
    for depth, name in enumerate(path):
        if definition is None:
            parent = ".".join(path[:depth])
            raise BadRequestError(f"Filter fieldName {'.'.join(path)}: {parent} has no fields.")
        field = next((f for f in definition.fields if _graphql_name(f) == name), None)
        if field is None:
            raise BadRequestError(
                f"Filter fieldName {'.'.join(path)}: type {definition.name} has no field {name}."
            )
        allowed = modes_of(tuple(field.directives)) or modes_of(tuple(definition.directives or ()))
        if mode is not None and allowed and mode not in allowed:
            raise ForbiddenFieldError(name, definition.name)
        inner = field.type
        while isinstance(inner, StrawberryContainer):
            inner = inner.of_type
        definition = definition_of(inner)
