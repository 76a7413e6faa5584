"""A filter that is malformed or breaks one of AppSync's limits is refused with a message that
says which."""

from __future__ import annotations

from typing import Any

import pytest

from subscriptions.filters import FilterError, parse_filter


def condition(field: str = "status", operator: str = "eq", value: Any = "X") -> dict[str, Any]:
    return {"fieldName": field, "operator": operator, "value": value}


def groups(*filter_lists: list[dict[str, Any]]) -> dict[str, Any]:
    return {"filterGroup": [{"filters": filters} for filters in filter_lists]}


def test_ten_groups_of_five_filters_on_five_fields_are_allowed() -> None:
    fields = ["a", "b", "c", "d", "e"]
    parsed = parse_filter(groups(*[[condition(f) for f in fields] for _ in range(10)]))
    assert len(parsed.groups) == 10 and all(len(g) == 5 for g in parsed.groups)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            groups(*[[condition()] for _ in range(11)]),
            "Filters combination exceed maximum limit 10",
        ),
        (groups([condition(f) for f in "abcdef"]), "the limit is 5"),
        (groups([condition("a"), condition("a", "ne")]), "same fieldName multiple time: a"),
        (
            groups([condition(f) for f in "abc"], [condition(f) for f in "def"]),
            "Filters exceed maximum attributes limit 5",
        ),
        (groups([condition(operator="in", value=list(range(6)))]), "maximum value limit 5"),
        (groups([condition(operator="notIn", value=list(range(6)))]), "operator `notIn`"),
        (groups([condition(operator="containsAny", value=list(range(21)))]), "limit 20"),
        (groups([condition("a.b.c.d.e.f")]), "1 to 5 dotted names"),
        (groups([condition("a" * 257)]), "longer than 256"),
        (groups([condition("a..b")]), "dotted names"),
    ],
)
def test_limits(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(FilterError, match=message):
        parse_filter(raw)


def test_the_limits_themselves_pass() -> None:
    parse_filter(groups([condition(operator="in", value=list(range(5)))]))
    parse_filter(groups([condition(operator="containsAny", value=list(range(20)))]))
    parse_filter(groups([condition("a.b.c.d.e")]))
    parse_filter(groups([condition("a" * 256)]))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, '"filterGroup" list'),
        ({"filterGroup": {}}, '"filterGroup" list'),
        ({"filterGroup": []}, "is empty"),
        ({"filterGroup": [{}]}, '"filters" list'),
        (groups([]), "is empty"),
        (groups(["status eq X"]), '"fieldName", "operator" and "value"'),
        (groups([{"operator": "eq", "value": 1}]), '"fieldName"'),
        (groups([condition(operator="like")]), "Unknown filter operator 'like'"),
        (groups([condition(operator="eq", value=None)]), "number, a string or a boolean"),
        (groups([condition(operator="eq", value=[1])]), "number, a string or a boolean"),
        (groups([condition(operator="gt", value=True)]), "number or a string"),
        (groups([condition(operator="beginsWith", value=1)]), "must be a string"),
        (groups([condition(operator="in", value="A")]), "non-empty list"),
        (groups([condition(operator="in", value=[])]), "non-empty list"),
        (groups([condition(operator="in", value=[{"a": 1}])]), "numbers or strings"),
        (groups([condition(operator="between", value=[1])]), r"\[low, high\]"),
        (groups([condition(operator="between", value=[1, "z"])]), r"\[low, high\]"),
        (groups([condition(operator="attributeExists", value="yes")]), "true or false"),
    ],
)
def test_malformed_filters(raw: Any, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        parse_filter(raw)
