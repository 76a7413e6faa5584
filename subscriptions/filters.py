"""AppSync's enhanced subscription filters: parse a filter, hold it to AppSync's limits, and
evaluate it against a mutation's result.

A filter is AppSync's `filterJsonObject`, as a subscription resolver hands it to
`$extensions.setSubscriptionFilter` / `extensions.setSubscriptionFilter`:

    {"filterGroup": [
        {"filters": [{"fieldName": "total.amount", "operator": "ge", "value": 10000},
                     {"fieldName": "status", "operator": "in", "value": ["CONFIRMED"]}]},
        {"filters": [{"fieldName": "customerId", "operator": "eq", "value": "c-0001"}]}]}

The filters of a group are AND'd; the groups are OR'd. `fieldName` is a path of field names
joined by dots (`total.amount`); a path through a list collects the items' values, which
`contains`, `notContains` and `containsAny` then test (`lines.productId contains "p-1"`).

A field that is absent or null matches `ne`, `notContains`, `notIn` and `attributeExists:
false`, and nothing else: AppSync compares only values that exist.

Limits (AppSync rejects a subscription that breaks them, and so do we):
- at most 10 groups, at most 5 filters per group, no fieldName twice in one group, at most
  5 distinct fieldNames in the whole filter ("Filters exceed maximum attributes limit",
  "Filters combination exceed maximum limit", "filter uses same fieldName multiple time": the
  service's own messages, which Amplify DataStore matches in
  aws-amplify/amplify-js packages/datastore/src/sync/processors/subscription.ts);
- `in` and `notIn` take at most 5 values ("subscription exceeds maximum value limit 5 for
  operator `in`", aws-amplify/amplify-category-api#740), `containsAny` at most 20;
- a fieldName has at most 5 levels and 256 characters (AppSync's filter reference,
  docs.aws.amazon.com/appsync/latest/devguide/extensions.html; the same limits are encoded in
  the lambda-appsync crate, RustyServerless/lambda-appsync src/subscription_filters.rs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_GROUPS = 10
MAX_FILTERS_PER_GROUP = 5
MAX_FIELDS = 5
MAX_IN_VALUES = 5
MAX_CONTAINS_ANY_VALUES = 20
MAX_PATH_DEPTH = 5
MAX_PATH_LENGTH = 256


class FilterError(ValueError):
    """The filter is malformed or breaks one of AppSync's limits; the message says how."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

Path = tuple[str, ...]


def _is_number(value: object) -> bool:
    # JSON booleans are Python ints; they are not numbers to a filter.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | bool) or _is_number(value)


def _comparable(a: object, b: object) -> bool:
    return (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str))


def _equal(a: object, b: object) -> bool:
    # 1 == True in Python; a filter tells numbers from booleans as JSON does.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return _comparable(a, b) and a == b


def _contains(field: object, value: object) -> bool:
    if isinstance(field, str):
        return isinstance(value, str) and value in field
    if isinstance(field, list):
        return any(_equal(item, value) for item in field)
    return False


def _lt(a: Any, b: Any) -> bool:
    return _comparable(a, b) and bool(a < b)


def _le(a: Any, b: Any) -> bool:
    return _comparable(a, b) and bool(a <= b)


def _between(field: Any, bounds: Any) -> bool:
    low, high = bounds
    return _le(low, field) and _le(field, high)


# Each operator as a test of (field value, filter value); the field value is never MISSING.
_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _equal,
    "ne": lambda f, v: not _equal(f, v),
    "lt": _lt,
    "le": _le,
    "gt": lambda f, v: _lt(v, f),
    "ge": lambda f, v: _le(v, f),
    "contains": _contains,
    "notContains": lambda f, v: not _contains(f, v),
    "beginsWith": lambda f, v: isinstance(f, str) and f.startswith(v),
    "in": lambda f, v: any(_equal(f, item) for item in v),
    "notIn": lambda f, v: not any(_equal(f, item) for item in v),
    "between": _between,
    "containsAny": lambda f, v: any(_contains(f, item) for item in v),
    "attributeExists": lambda f, v: bool(v),
}
# What a field that is absent or null gives each operator.
_WHEN_MISSING = {"ne": True, "notContains": True, "notIn": True}


@dataclass(frozen=True, slots=True)
class Condition:
    path: Path
    operator: str
    value: Any

    def matches(self, result: Mapping[str, Any]) -> bool:
        field = lookup(result, self.path)
        if field is MISSING or field is None:
            if self.operator == "attributeExists":
                return not self.value
            return _WHEN_MISSING.get(self.operator, False)
        return _TESTS[self.operator](field, self.value)


@dataclass(frozen=True, slots=True)
class Filter:
    """Groups OR'd, each a tuple of conditions AND'd."""

    groups: tuple[tuple[Condition, ...], ...]

    def matches(self, result: Mapping[str, Any]) -> bool:
        return any(all(c.matches(result) for c in group) for group in self.groups)

    @property
    def paths(self) -> frozenset[Path]:
        return frozenset(c.path for group in self.groups for c in group)


def matches_all(filters: Sequence[Filter], result: Mapping[str, Any]) -> bool:
    """Several filters (the server's rule, the client's) must all pass."""
    return all(f.matches(result) for f in filters)


def lookup(result: Mapping[str, Any], path: Path) -> Any:
    """The value at `path`; through a list, the list of the items' values."""
    value: Any = result
    for i, name in enumerate(path):
        if isinstance(value, list):
            rest = path[i:]
            return [v for v in _flatten(lookup(item, rest) for item in value) if v is not MISSING]
        if not isinstance(value, Mapping) or name not in value:
            return MISSING
        value = value[name]
    return value


def _flatten(values: Iterator[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list):
            yield from value
        else:
            yield value


def parse_filter(raw: object) -> Filter:
    """A Filter from AppSync's filterJsonObject; FilterError when it is malformed or breaks
    a limit."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("filterGroup"), list):
        raise FilterError('A filter is an object with a "filterGroup" list.')
    raw_groups: list[Any] = raw["filterGroup"]
    if not raw_groups:
        raise FilterError('"filterGroup" is empty.')
    if len(raw_groups) > MAX_GROUPS:
        raise FilterError(
            f"Filters combination exceed maximum limit {MAX_GROUPS} for subscription."
        )
    groups = tuple(_parse_group(g) for g in raw_groups)
    parsed = Filter(groups)
    if len(parsed.paths) > MAX_FIELDS:
        raise FilterError(f"Filters exceed maximum attributes limit {MAX_FIELDS} for subscription.")
    return parsed


def _parse_group(raw: object) -> tuple[Condition, ...]:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("filters"), list):
        raise FilterError('Each entry of "filterGroup" is an object with a "filters" list.')
    raw_filters: list[Any] = raw["filters"]
    if not raw_filters:
        raise FilterError('A "filters" list is empty.')
    if len(raw_filters) > MAX_FILTERS_PER_GROUP:
        raise FilterError(
            f"A filter group has {len(raw_filters)} filters; the limit is {MAX_FILTERS_PER_GROUP}."
        )
    conditions = tuple(_parse_condition(f) for f in raw_filters)
    seen: set[Path] = set()
    for condition in conditions:
        if condition.path in seen:
            name = ".".join(condition.path)
            raise FilterError(f"filter uses same fieldName multiple time: {name}.")
        seen.add(condition.path)
    return conditions


def _parse_condition(raw: object) -> Condition:
    if not isinstance(raw, Mapping):
        raise FilterError('Each filter is an object with "fieldName", "operator" and "value".')
    field_name, operator, value = raw.get("fieldName"), raw.get("operator"), raw.get("value")
    if not isinstance(field_name, str) or not field_name:
        raise FilterError('A filter has no "fieldName" string.')
    if len(field_name) > MAX_PATH_LENGTH:
        raise FilterError(f"fieldName {field_name[:40]}... is longer than {MAX_PATH_LENGTH}.")
    path = tuple(field_name.split("."))
    if len(path) > MAX_PATH_DEPTH or not all(path):
        raise FilterError(f"fieldName {field_name} must be 1 to {MAX_PATH_DEPTH} dotted names.")
    if operator not in _TESTS:
        known = " ".join(_TESTS)
        raise FilterError(f"Unknown filter operator {operator!r}; known: {known}.")
    _check_value(field_name, operator, value)
    return Condition(path, operator, value)


def _check_value(field_name: str, operator: str, value: Any) -> None:
    where = f"operator `{operator}` on {field_name}"
    if operator in ("eq", "ne"):
        if not _is_scalar(value):
            raise FilterError(f"The value of {where} must be a number, a string or a boolean.")
    elif operator in ("lt", "le", "gt", "ge", "contains", "notContains"):
        if not (_is_number(value) or isinstance(value, str)):
            raise FilterError(f"The value of {where} must be a number or a string.")
    elif operator == "beginsWith":
        if not isinstance(value, str):
            raise FilterError(f"The value of {where} must be a string.")
    elif operator in ("in", "notIn", "containsAny"):
        limit = MAX_CONTAINS_ANY_VALUES if operator == "containsAny" else MAX_IN_VALUES
        if not isinstance(value, list) or not value:
            raise FilterError(f"The value of {where} must be a non-empty list.")
        if len(value) > limit:
            raise FilterError(
                f"subscription exceeds maximum value limit {limit} for operator `{operator}`."
            )
        if not all(_is_number(v) or isinstance(v, str) for v in value):
            raise FilterError(f"The values of {where} must be numbers or strings.")
    elif operator == "between":
        if not (isinstance(value, list) and len(value) == 2 and _comparable(value[0], value[1])):
            raise FilterError(f"The value of {where} must be [low, high], two numbers or strings.")
    elif operator == "attributeExists" and not isinstance(value, bool):
        raise FilterError(f"The value of {where} must be true or false.")
