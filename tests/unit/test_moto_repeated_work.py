"""hemisphere.moto.repeated_work: the local endpoint's emulators do once what gives the same answer
every time, and answer as moto does."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.utils import json_path

from hemisphere.moto.repeated_work import (
    install_json_path_cache,
    install_linear_item_size_check,
    install_queue_attributes_once,
)


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    install_json_path_cache()
    install_linear_item_size_check()


PATHS = ("$.order.id", "$.order.lines[1].sku", "$.order.lines[*].sku", "$.order.lines[0]", "$")


def test_a_json_path_is_parsed_once_and_finds_what_it_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    document = {"order": {"id": "o-1", "lines": [{"sku": "p-1"}, {"sku": "p-2"}]}}
    cached = json_path.parse
    with monkeypatch.context() as uncached:
        uncached.setattr(json_path, "parse", cached.__wrapped__)  # type: ignore[attr-defined]
        expected = [json_path.extract_json(path, document) for path in PATHS]
    assert [json_path.extract_json(path, document) for path in PATHS] == expected
    assert expected[0] == "o-1" and expected[2] == ["p-1", "p-2"]
    before = json_path.parse.cache_info().hits  # type: ignore[attr-defined]
    for _ in range(5):
        assert json_path.extract_json("$.order.id", {"order": {"id": "o-2"}}) == "o-2"
    assert json_path.parse.cache_info().hits == before + 5  # type: ignore[attr-defined]
    with pytest.raises(json_path.NoSuchJsonPathError):
        json_path.extract_json("$.order.missing", document)


def test_a_shared_result_path_writes_into_each_input_alone() -> None:
    expression = result_path.parse("$.result.taskResult")
    assert expression is result_path.parse("$.result.taskResult")
    results: list[dict[str, Any]] = []

    def evaluate(n: int) -> None:
        results.append(expression.update_or_create({"n": n}, {"ok": n}))

    threads = [threading.Thread(target=evaluate, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r["n"] for r in results) == list(range(8))
    assert all(r["result"]["taskResult"] == {"ok": r["n"]} for r in results)


def test_an_item_is_measured_once_and_refused_past_moto_s_limit() -> None:
    attrs = {f"a{n}": {"S": "x" * 100} for n in range(40)}
    attrs["lines"] = {"L": [{"M": {"sku": {"S": f"p-{n}"}, "qty": {"N": "1"}}} for n in range(5)]}
    item = Item(DynamoType({"S": "ORDER#1"}), DynamoType({"S": "A"}), attrs)
    assert item.attrs["a3"] == DynamoType({"S": "x" * 100})
    assert item.to_json()["Attributes"]["lines"]["L"][4]["M"]["sku"] == {"S": "p-4"}
    # Just under and just over the limit moto applies (405,000 bytes, keys included).
    under = {"k": {"S": "x" * (405000 - 1)}}
    assert Item(DynamoType({"S": "P"}), None, under).attrs["k"].size() == 404999
    with pytest.raises(ItemSizeTooLarge):
        Item(DynamoType({"S": "P"}), None, {"k": {"S": "x" * 405000}})


def test_a_queue_answers_its_attributes_as_moto_does_and_receives_what_it_retains() -> None:
    from moto.sqs.exceptions import InvalidAttributeName
    from moto.sqs.models import SQSBackend

    install_queue_attributes_once()
    backend = SQSBackend("us-east-1", "123456789012")
    backend.create_queue("steps", MessageRetentionPeriod="60")
    for n in range(3):
        backend.send_message("steps", f"m{n}")
    everything = backend.get_queue_attributes("steps", ["All"])
    assert everything["ApproximateNumberOfMessages"] == 3
    assert backend.get_queue_attributes(
        "steps", ["ApproximateNumberOfMessages", "MessageRetentionPeriod"]
    ) == {"ApproximateNumberOfMessages": 3, "MessageRetentionPeriod": 60}
    assert backend.get_queue_attributes("steps", []) == {}
    with pytest.raises(InvalidAttributeName):
        backend.get_queue_attributes("steps", ["NoSuchAttribute"])
    received = backend.receive_message(
        "steps", count=10, wait_seconds_timeout=0, visibility_timeout=30
    )
    assert sorted(m.body for m in received) == ["m0", "m1", "m2"]
    # Past its retention period a message is no longer received.
    backend.send_message("steps", "old")
    [old] = [m for m in backend.get_queue("steps")._messages if m.body == "old"]
    old.sent_timestamp -= 61_000
    assert (
        backend.receive_message("steps", count=10, wait_seconds_timeout=0, visibility_timeout=30)
        == []
    )
