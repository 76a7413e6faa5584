"""The single-table layout and the wire converter of adapters/dynamodb/items.py."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from adapters.dynamodb import items
from domain.aggregates import CUSTOMER, ORDER, PRODUCT
from domain.events import CustomerChanged, Event, OrderChanged, ProductChanged
from domain.model import OrderStatus, RegionControl, StatusChange
from tests.support.builders import T0, customer, order, product

EVENTS: list[Event] = [
    ProductChanged(product()),
    ProductChanged(product("p-2", description=None, name="Ünïcode ✓", available=0)),
    ProductChanged(product("p-3", description="")),
    CustomerChanged(customer()),
    OrderChanged(order()),
    OrderChanged(order("o-2", version=5)),
    OrderChanged(
        dataclasses.replace(
            order("o-3", version=2),
            status=OrderStatus.FAILED,
            failure_reason="card declined",
            history=(StatusChange(OrderStatus.FAILED, T0, reason="card declined"),),
        )
    ),
    OrderChanged(dataclasses.replace(order("o-4"), lines=(), history=())),
]


def _snapshot(event: Event) -> object:
    match event:
        case ProductChanged(product=p):
            return p
        case CustomerChanged(customer=c):
            return c
        case OrderChanged(order=o):
            return o


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: f"{e.kind}")
def test_event_item_wire_round_trip(event: Event) -> None:
    item = items.event_to_item(event)
    wire = items.item_to_wire(item)
    plain = items.item_from_wire(wire)

    assert plain == item
    assert items.snapshot_from_item(plain) == _snapshot(event)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: f"{e.kind}")
def test_item_carries_kind_version_and_camel_case_attributes(event: Event) -> None:
    item = items.event_to_item(event)
    snapshot = _snapshot(event)

    assert item["kind"] == event.kind
    assert item["version"] == snapshot.version  # type: ignore[attr-defined]
    assert item["id"] == snapshot.id  # type: ignore[attr-defined]
    assert "updatedAt" in item
    assert not any("_" in name for name in item if not name.startswith("gsi"))


def test_product_keys_and_indexes() -> None:
    item = items.event_to_item(ProductChanged(product("p-7", category="garden")))

    assert (item["pk"], item["sk"]) == ("PRODUCT#p-7", "A")
    assert (item["gsi1pk"], item["gsi1sk"]) == ("CATEGORY#garden", "p-7")
    assert (item["gsi2pk"], item["gsi2sk"]) == ("PRODUCTS", "p-7")


def test_customer_keys_and_no_index() -> None:
    item = items.event_to_item(CustomerChanged(customer("c-9")))

    assert (item["pk"], item["sk"]) == ("CUSTOMER#c-9", "A")
    assert not {"gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"} & item.keys()


def test_order_keys_and_customer_index() -> None:
    item = items.event_to_item(OrderChanged(order("o-5", customer_id="c-3")))

    assert (item["pk"], item["sk"]) == ("ORDER#o-5", "A")
    assert item["gsi1pk"] == "CUSTOMER#c-3"
    assert item["gsi1sk"] == "2024-05-01T12:00:00.123456Z#o-5"
    assert not {"gsi2pk", "gsi2sk"} & item.keys()


def test_order_sort_keys_sort_chronologically_whatever_the_time_zone() -> None:
    tokyo = timezone(timedelta(hours=9))
    moments = [
        T0,
        T0 + timedelta(microseconds=1),
        (T0 + timedelta(hours=1)).astimezone(tokyo),  # later, but "bigger" local digits
        T0 - timedelta(days=400),
        datetime(2024, 5, 1, 12, 0, tzinfo=UTC),  # no microseconds: still fixed width
        (T0 - timedelta(minutes=1)).astimezone(tokyo),
    ]
    keyed = [
        (items.snapshot_item(ORDER, order(f"o-{i}", created_at=at))["gsi1sk"], at)
        for i, at in enumerate(moments)
    ]

    assert [at for _, at in sorted(keyed)] == sorted(moments)


def test_keys_of_the_region_control_item() -> None:
    control = RegionControl(primary_region="eu-west-1", epoch=7, read_only=True)
    item = items.region_control_item(control)

    assert (item["pk"], item["sk"]) == ("CONTROL", "TOPOLOGY")
    assert item == {
        "pk": "CONTROL",
        "sk": "TOPOLOGY",
        "kind": "RegionControl",
        # Replicated last writer wins: the version is the epoch.
        "version": 7,
        "primaryRegion": "eu-west-1",
        "epoch": 7,
        "readOnly": True,
    }
    assert items.snapshot_from_item(items.item_from_wire(items.item_to_wire(item))) == control


def test_key_helpers_match_the_items() -> None:
    assert items.entity_key(PRODUCT, "x") == {"pk": "PRODUCT#x", "sk": "A"}
    assert items.entity_key(CUSTOMER, "x") == {"pk": "CUSTOMER#x", "sk": "A"}
    assert items.entity_key(ORDER, "x") == {"pk": "ORDER#x", "sk": "A"}
    assert items.key_to_wire(items.control_key()) == {
        "pk": {"S": "CONTROL"},
        "sk": {"S": "TOPOLOGY"},
    }


def test_wire_format_is_the_one_boto3_writes() -> None:
    item = items.event_to_item(OrderChanged(order(failure_reason=None)))
    serializer = TypeSerializer()

    assert items.item_to_wire(item) == {k: serializer.serialize(v) for k, v in item.items()}


def test_wire_decoding_agrees_with_boto3_but_with_ints() -> None:
    wire = items.item_to_wire(items.event_to_item(OrderChanged(order(version=4))))
    deserializer = TypeDeserializer()

    def undecimal(value: object) -> object:
        if isinstance(value, Decimal):
            return int(value)
        if isinstance(value, dict):
            return {k: undecimal(v) for k, v in value.items()}
        if isinstance(value, list):
            return [undecimal(v) for v in value]
        return value

    ours = items.item_from_wire(wire)
    assert ours == {k: undecimal(deserializer.deserialize(v)) for k, v in wire.items()}
    assert type(ours["version"]) is int
    assert type(ours["total"]["amount"]) is int


@pytest.mark.parametrize(
    ("plain", "wire"),
    [
        ("", {"S": ""}),
        (0, {"N": "0"}),
        (-12, {"N": "-12"}),
        (10**20, {"N": "100000000000000000000"}),
        (True, {"BOOL": True}),
        (False, {"BOOL": False}),
        (None, {"NULL": True}),
        ([], {"L": []}),
        ({}, {"M": {}}),
        ({"a": [1, {"b": None}]}, {"M": {"a": {"L": [{"N": "1"}, {"M": {"b": {"NULL": True}}}]}}}),
    ],
)
def test_wire_values(plain: object, wire: dict[str, object]) -> None:
    assert items.to_wire(plain) == wire
    assert items.from_wire(wire) == plain
    assert type(items.from_wire(wire)) is type(plain)


def test_tuples_are_stored_as_lists() -> None:
    assert items.to_wire((1, "a")) == {"L": [{"N": "1"}, {"S": "a"}]}


@pytest.mark.parametrize("value", [1.5, Decimal("1"), b"bytes", {1, 2}, object()])
def test_values_outside_the_plain_format_are_refused(value: object) -> None:
    with pytest.raises(TypeError):
        items.to_wire(value)


def test_non_integer_numbers_from_elsewhere_are_read_as_float() -> None:
    assert items.from_wire({"N": "1.25"}) == 1.25


@pytest.mark.parametrize("wire", [{"SS": ["a"]}, {"B": b"x"}, {"NS": ["1"]}])
def test_unsupported_wire_types_are_refused(wire: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        items.from_wire(wire)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown item kind"):
        items.snapshot_from_item({"pk": "X#1", "sk": "A", "kind": "Invoice"})
