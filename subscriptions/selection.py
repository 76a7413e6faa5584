"""The fields a mutation selected, and the view of its result a subscriber gets.

AppSync sends subscribers what the *triggering mutation* selected: a field the subscriber asks
for that the mutation did not select is null (and a non-null one fails as GraphQL says). The
mutation records its selection as a mask next to the snapshot it publishes; every subscriber
sees the snapshot through that mask.

A mask is a dict of GraphQL field names: `True` for a leaf, a nested mask for an object (or a
list of objects), e.g. `{"id": True, "total": {"amount": True}}`. `ALL` stands for every field
(a message without a mask, as the region's publisher sends: it selects everything).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from functools import cache
from typing import Any, Final

from strawberry.types.nodes import SelectedField, Selection
from strawberry.utils.str_converters import to_camel_case

from schema.scalars import serialize_datetime


class AllFields:
    def __repr__(self) -> str:
        return "ALL"


ALL: Final = AllFields()
Mask = dict[str, Any]
"""Values are `True` or a nested Mask."""


def mask_of(selections: Sequence[Selection]) -> Mask:
    """The mask of a selection set as Strawberry hands it to a resolver (`info.selected_fields`
    and their `selections`): fragments are merged, `@skip`/`@include` honoured, `__typename`
    left out (it is not data)."""
    mask: Mask = {}
    for selection in selections:
        if _skipped(selection.directives):
            continue
        if isinstance(selection, SelectedField):
            if selection.name.startswith("__"):
                continue
            below: Any = mask_of(selection.selections) if selection.selections else True
            mask[selection.name] = _merge(mask.get(selection.name), below)
        else:
            for name, below in mask_of(selection.selections).items():
                mask[name] = _merge(mask.get(name), below)
    return mask


def _skipped(directives: Mapping[str, Mapping[str, Any]]) -> bool:
    skip = directives.get("skip")
    include = directives.get("include")
    return bool(skip and skip.get("if")) or (include is not None and not include.get("if"))


def _merge(old: Any, new: Any) -> Any:
    if isinstance(old, dict) and isinstance(new, dict):
        merged = dict(old)
        for name, below in new.items():
            merged[name] = _merge(merged.get(name), below)
        return merged
    return new if old is None else old


def mask_from_json(raw: object) -> Mask:
    """A mask that came over the broker; ValueError when it is not one."""
    if not isinstance(raw, dict):
        raise ValueError(f"a selection mask is an object, not {type(raw).__name__}")
    for name, below in raw.items():
        if not isinstance(name, str) or not (below is True or isinstance(below, dict)):
            raise ValueError(f"selection mask entry {name!r} is neither true nor an object")
        if isinstance(below, dict):
            mask_from_json(below)
    return raw


def covers(mask: Mask, plain: Mapping[str, Any]) -> bool:
    """Whether the mask selects every field of a plain snapshot (lists: every field of every
    item), in which case the snapshot can travel without it."""
    for name, value in plain.items():
        below = mask.get(name)
        if below is None:
            return False
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, Mapping) and not (isinstance(below, dict) and covers(below, item)):
                return False
    return True


def top_level(plain: Mapping[str, Any], mask: Mask | AllFields) -> Mapping[str, Any]:
    """The top-level fields of a plain snapshot that the mutation selected: what subscription
    arguments are compared with."""
    if isinstance(mask, AllFields):
        return plain
    return {name: plain[name] for name in mask if name in plain}


_graphql_name = cache(to_camel_case)


@cache
def _python_names(cls: type) -> Mapping[str, str]:
    return {_graphql_name(f.name): f.name for f in dataclasses.fields(cls)}


def graphql_value(value: Any, mask: Mask | AllFields | bool) -> Any:
    """A domain snapshot as the mutation's GraphQL response shows it, restricted to the mask:
    camelCase names, AWSDateTime strings, enum names. Enhanced filters evaluate this."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return [graphql_value(item, mask) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _python_names(type(value))
        if isinstance(mask, dict):
            return {
                name: graphql_value(getattr(value, names[name]), below)
                for name, below in mask.items()
                if name in names
            }
        return {name: graphql_value(getattr(value, attr), ALL) for name, attr in names.items()}
    if isinstance(value, datetime):
        return serialize_datetime(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


class Selected:
    """A snapshot seen through a mask. Strawberry reads fields by Python attribute name; a
    field the mask leaves out reads as None."""

    __slots__ = ("_mask", "_value")

    def __init__(self, value: object, mask: Mask) -> None:
        self._value = value
        self._mask = mask

    def __getattr__(self, name: str) -> Any:
        # Never answer private or special names: GraphQL's executor probes values for
        # `__await__` and the like, and a None there would make us look awaitable.
        if name.startswith("_"):
            raise AttributeError(name)
        below = self._mask.get(_graphql_name(name))
        if below is None:
            return None
        return _through(getattr(self._value, name), below)


def _through(value: Any, below: Any) -> Any:
    if below is True or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_through(item, below) for item in value]
    return Selected(value, below)


def view(value: object, mask: Mask | AllFields) -> object:
    """What a subscription field yields: the snapshot itself when the mutation selected
    everything (no proxy on the common path), else the snapshot through the mask."""
    if isinstance(mask, AllFields):
        return value
    return Selected(value, mask)
