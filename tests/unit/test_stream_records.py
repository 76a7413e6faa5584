"""Stream records as the publisher sees them: entity snapshots, and nothing else."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from adapters.dynamodb import items
from adapters.dynamodb.leases import lease_key
from adapters.dynamodb.stream import change_from_record
from domain.aggregates import CUSTOMER, ORDER, PRODUCT
from domain.model import RegionControl
from tests.support.builders import customer, order, product


def _record(new: dict[str, Any] | None, event: str = "MODIFY", seq: str = "100") -> dict[str, Any]:
    data: dict[str, Any] = {"SequenceNumber": seq, "Keys": {}}
    if new is not None:
        data["NewImage"] = items.item_to_wire(new)
    return {"eventName": event, "dynamodb": data}


@pytest.mark.parametrize(
    ("item", "snapshot"),
    [
        (items.snapshot_item(PRODUCT, product(version=4)), product(version=4)),
        (items.snapshot_item(CUSTOMER, customer()), customer()),
        (items.snapshot_item(ORDER, order(version=2)), order(version=2)),
    ],
)
def test_an_entity_change_carries_its_new_snapshot(item: dict[str, Any], snapshot: Any) -> None:
    change = change_from_record(_record(item, "INSERT", "42"))
    assert change.sequence_number == "42"
    assert change.snapshot == snapshot


@pytest.mark.parametrize(
    "item",
    [
        items.region_control_item(RegionControl("us-east-1", epoch=1)),
        {**lease_key("stream-publisher#us-east-1"), "kind": "StreamLease", "holder": "h"},
        {"pk": "CHECKPOINT#x", "sk": "SHARD#s", "kind": "StreamCheckpoint"},
        {"pk": "SOMETHING", "sk": "ELSE"},
    ],
)
def test_control_items_are_not_published(item: dict[str, Any]) -> None:
    assert change_from_record(_record(item)).snapshot is None


def test_a_removal_is_not_published() -> None:
    item = items.snapshot_item(PRODUCT, product())
    assert change_from_record(_record(item, "REMOVE")).snapshot is None
    assert change_from_record(_record(None, "REMOVE")).snapshot is None


def test_an_unreadable_entity_is_skipped_with_an_error(caplog: pytest.LogCaptureFixture) -> None:
    broken = {**items.snapshot_item(PRODUCT, product()), "price": "free"}
    with caplog.at_level(logging.ERROR):
        assert change_from_record(_record(broken)).snapshot is None
    assert "PRODUCT#p-0001" in caplog.text
