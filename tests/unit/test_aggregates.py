"""domain.aggregates: one entry per aggregate, agreeing with the events, the codec and the
committed contract that every other module takes its names from."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import (
    FieldDefinitionNode,
    ListValueNode,
    NamedTypeNode,
    ObjectTypeDefinitionNode,
    StringValueNode,
    parse,
)

from domain.aggregates import (
    AGGREGATES,
    BY_NAME,
    BY_PUBLISH_MUTATION,
    CUSTOMER,
    ORDER,
    PRODUCT,
    Aggregate,
    Snapshot,
    of_snapshot,
    snapshot_of,
)
from domain.events import CustomerChanged, Event, OrderChanged, ProductChanged
from schema.export import CONTRACT_PATH
from tests.support.builders import customer, order, product

CASES: list[tuple[Aggregate[Any], Snapshot, Event]] = [
    (PRODUCT, product(), ProductChanged(product())),
    (CUSTOMER, customer(), CustomerChanged(customer())),
    (ORDER, order(), OrderChanged(order())),
]


@pytest.mark.parametrize(("aggregate", "snapshot", "event"), CASES)
def test_an_event_and_a_snapshot_name_their_aggregate(
    aggregate: Aggregate[Any], snapshot: Snapshot, event: Event
) -> None:
    assert snapshot_of(event) == (aggregate, snapshot)
    assert of_snapshot(snapshot) is aggregate
    # The outbox stores an event's kind; the items and the registry use the same name.
    assert event.kind == aggregate.name
    assert isinstance(snapshot, aggregate.snapshot_type)
    assert aggregate.from_plain(aggregate.to_plain(snapshot)) == snapshot


def test_every_name_is_unique() -> None:
    assert set(BY_NAME.values()) == set(BY_PUBLISH_MUTATION.values()) == set(AGGREGATES)
    for attribute in ("kind", "name", "key_prefix", "publish_mutation", "subscription"):
        values = [getattr(a, attribute) for a in AGGREGATES]
        assert len(set(values)) == len(values), attribute


def _fields(type_name: str) -> dict[str, FieldDefinitionNode]:
    document = parse(CONTRACT_PATH.read_text())
    (definition,) = (
        d
        for d in document.definitions
        if isinstance(d, ObjectTypeDefinitionNode) and d.name.value == type_name
    )
    return {f.name.value: f for f in definition.fields or ()}


def _returns(field: FieldDefinitionNode) -> str:
    assert isinstance(field.type, NamedTypeNode)
    return field.type.name.value


@pytest.mark.parametrize("aggregate", AGGREGATES, ids=lambda a: a.name)
def test_the_contract_has_the_registered_names(aggregate: Aggregate[Any]) -> None:
    mutation = _fields("Mutation")[aggregate.publish_mutation]
    subscription = _fields("Subscription")[aggregate.subscription]

    assert _returns(mutation) == _returns(subscription) == aggregate.name
    (trigger,) = (d for d in subscription.directives or () if d.name.value == "aws_subscribe")
    (argument,) = trigger.arguments
    assert isinstance(argument.value, ListValueNode)
    assert [v.value for v in argument.value.values if isinstance(v, StringValueNode)] == [
        aggregate.publish_mutation
    ]
