"""Enhanced subscription filters: each operator, groups and paths, on a result as the
mutation's GraphQL response shows it."""

from __future__ import annotations

from typing import Any

import pytest

from subscriptions.filters import MISSING, Filter, lookup, matches_all, parse_filter

ORDER: dict[str, Any] = {
    "id": "o-0001",
    "customerId": "c-0001",
    "status": "CONFIRMED",
    "total": {"amount": 2500, "currency": "USD"},
    "failureReason": None,
    "lines": [
        {"productId": "p-0001", "quantity": 2},
        {"productId": "p-0002", "quantity": 1},
    ],
    "tags": ["gift", "express"],
    "paid": True,
    "version": 3,
}


def one(field: str, operator: str, value: object) -> Filter:
    return parse_filter(
        {"filterGroup": [{"filters": [{"fieldName": field, "operator": operator, "value": value}]}]}
    )


@pytest.mark.parametrize(
    ("field", "operator", "value", "expected"),
    [
        ("status", "eq", "CONFIRMED", True),
        ("status", "eq", "FAILED", False),
        ("status", "ne", "FAILED", True),
        ("status", "ne", "CONFIRMED", False),
        ("total.amount", "eq", 2500, True),
        ("total.amount", "eq", 2500.0, True),
        ("paid", "eq", True, True),
        ("paid", "eq", 1, False),  # a boolean is not the number 1
        ("version", "eq", True, False),
        ("total.amount", "lt", 2501, True),
        ("total.amount", "lt", 2500, False),
        ("total.amount", "le", 2500, True),
        ("total.amount", "gt", 2499, True),
        ("total.amount", "gt", 2500, False),
        ("total.amount", "ge", 2500, True),
        ("total.amount", "gt", "1000", False),  # a string is not compared with a number
        ("customerId", "gt", "c-0000", True),
        ("customerId", "contains", "0001", True),
        ("customerId", "notContains", "0001", False),
        ("tags", "contains", "gift", True),
        ("tags", "contains", "gif", False),  # list membership, not substring
        ("tags", "notContains", "fragile", True),
        ("customerId", "beginsWith", "c-", True),
        ("customerId", "beginsWith", "p-", False),
        ("status", "in", ["PENDING", "CONFIRMED"], True),
        ("status", "in", ["PENDING"], False),
        ("status", "notIn", ["FAILED", "CANCELLED"], True),
        ("status", "notIn", ["CONFIRMED"], False),
        ("total.amount", "between", [1000, 2500], True),
        ("total.amount", "between", [2501, 9999], False),
        ("customerId", "between", ["c-0000", "c-0009"], True),
        ("tags", "containsAny", ["fragile", "express"], True),
        ("tags", "containsAny", ["fragile"], False),
        ("status", "attributeExists", True, True),
        ("status", "attributeExists", False, False),
        ("lines.productId", "contains", "p-0002", True),
        ("lines.productId", "notContains", "p-0003", True),
        ("lines.quantity", "contains", 2, True),
    ],
)
def test_operators(field: str, operator: str, value: object, expected: bool) -> None:
    assert one(field, operator, value).matches(ORDER) is expected


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("eq", "x", False),
        ("ne", "x", True),
        ("lt", 1, False),
        ("contains", "x", False),
        ("notContains", "x", True),
        ("beginsWith", "x", False),
        ("in", ["x"], False),
        ("notIn", ["x"], True),
        ("between", [1, 2], False),
        ("attributeExists", True, False),
        ("attributeExists", False, True),
    ],
)
@pytest.mark.parametrize("field", ["failureReason", "nowhere", "total.nowhere"])
def test_absent_and_null_fields(field: str, operator: str, value: object, expected: bool) -> None:
    assert one(field, operator, value).matches(ORDER) is expected


def test_filters_in_a_group_are_anded_and_groups_ored() -> None:
    both = {"fieldName": "status", "operator": "eq", "value": "CONFIRMED"}
    big = {"fieldName": "total.amount", "operator": "ge", "value": 10_000}
    mine = {"fieldName": "customerId", "operator": "eq", "value": "c-0001"}
    assert not parse_filter({"filterGroup": [{"filters": [both, big]}]}).matches(ORDER)
    assert parse_filter({"filterGroup": [{"filters": [both, big]}, {"filters": [mine]}]}).matches(
        ORDER
    )


def test_several_filters_must_all_pass() -> None:
    server = one("status", "ne", "FAILED")
    client = one("total.amount", "ge", 5000)
    assert matches_all([server], ORDER)
    assert not matches_all([server, client], ORDER)
    assert matches_all([], ORDER)


def test_lookup_through_lists_collects_the_items_values() -> None:
    assert lookup(ORDER, ("lines", "productId")) == ["p-0001", "p-0002"]
    assert lookup(ORDER, ("lines", "nowhere")) == []
    assert lookup(ORDER, ("total", "amount", "deeper")) is MISSING
