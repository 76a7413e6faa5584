"""The local endpoint's TransactWriteItems (hemisphere/moto/transactions.py): the answers and
stream records of moto's own, without deep-copying the tables it names."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

from hemisphere.moto.transactions import transact_write_items

MOTO_S_OWN = DynamoDBBackend.transact_write_items
TABLE = "t"


def _client() -> Any:
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    client.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return client


def _stream(client: Any) -> list[tuple[str, str]]:
    streams = boto3.client(
        "dynamodbstreams",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    arn = client.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    return [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in records]


def _item(pk: str, **attributes: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "A"}, **{k: {"S": v} for k, v in attributes.items()}}


def _key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "A"}}


Scenario = Callable[[Any], Any]


def _run(implementation: Any, scenario: Scenario) -> tuple[Any, list[tuple[str, str]], Any]:
    """The scenario's outcome (its answer or error), the stream after it, and the items."""
    with mock_aws(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(DynamoDBBackend, "transact_write_items", implementation)
        client = _client()
        client.put_item(TableName=TABLE, Item=_item("kept", v="1"))
        client.put_item(TableName=TABLE, Item=_item("gone", v="1"))
        try:
            outcome: Any = scenario(client)
        except ClientError as error:
            outcome = (error.response["Error"]["Code"], error.response.get("CancellationReasons"))
        items = sorted(
            (i["pk"]["S"], i.get("v", {}).get("S")) for i in client.scan(TableName=TABLE)["Items"]
        )
        return outcome, _stream(client), items


def _committed(client: Any) -> Any:
    return client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": _item("new", v="1")}},
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": _key("kept"),
                    "UpdateExpression": "SET v = :v",
                    "ConditionExpression": "v = :old",
                    "ExpressionAttributeValues": {":v": {"S": "2"}, ":old": {"S": "1"}},
                }
            },
            {"Delete": {"TableName": TABLE, "Key": _key("gone")}},
            {
                "ConditionCheck": {
                    "TableName": TABLE,
                    "Key": _key("absent"),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
    )["ResponseMetadata"]["HTTPStatusCode"]


def _cancelled_by_a_condition(client: Any) -> Any:
    return client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": _item("new", v="1")}},
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": _item("kept", v="9"),
                    "ConditionExpression": "attribute_not_exists(pk)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ]
    )


def _failed_while_writing(client: Any) -> Any:
    # The update names a value it does not give: found only when that write is made.
    return client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": _item("new", v="1")}},
            {"Delete": {"TableName": TABLE, "Key": _key("gone")}},
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": _key("kept"),
                    "UpdateExpression": "SET v = :missing",
                }
            },
        ]
    )


@pytest.mark.parametrize(
    "scenario",
    [_committed, _cancelled_by_a_condition, _failed_while_writing],
    ids=["committed", "cancelled by a condition", "failed while writing"],
)
def test_the_same_answers_items_and_stream_as_moto(scenario: Scenario) -> None:
    assert _run(transact_write_items, scenario) == _run(MOTO_S_OWN, scenario)


def test_what_a_committed_transaction_leaves() -> None:
    outcome, stream, items = _run(transact_write_items, _committed)
    assert outcome == 200
    assert stream[2:] == [("INSERT", "new"), ("MODIFY", "kept"), ("REMOVE", "gone")]
    assert items == [("kept", "2"), ("new", "1")]


def test_what_a_cancelled_transaction_leaves() -> None:
    outcome, stream, items = _run(transact_write_items, _cancelled_by_a_condition)
    code, reasons = outcome
    assert code == "TransactionCanceledException"
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]
    assert stream == [("INSERT", "kept"), ("INSERT", "gone")]  # the setup's, nothing more
    assert items == [("gone", "1"), ("kept", "1")]
    outcome, stream, items = _run(transact_write_items, _failed_while_writing)
    assert stream == [("INSERT", "kept"), ("INSERT", "gone")]
    assert items == [("gone", "1"), ("kept", "1")]


@pytest.fixture
def table_copies(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    copies: list[object] = []
    deepcopy = copy.deepcopy

    def counting(value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table):
            copies.append(value)
        return deepcopy(value, memo)

    monkeypatch.setattr(copy, "deepcopy", counting)
    yield copies


def test_no_table_is_copied_whatever_its_size(table_copies: list[object]) -> None:
    """moto's own copies every table a transaction names, items and stream: the cost of a
    checkpoint grew with everything the region ever wrote."""
    with mock_aws(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(DynamoDBBackend, "transact_write_items", transact_write_items)
        client = _client()
        for n in range(300):
            client.put_item(TableName=TABLE, Item=_item(f"p-{n}", v="1"))
        client.transact_write_items(
            TransactItems=[{"Put": {"TableName": TABLE, "Item": _item("checkpoint", v="7")}}]
        )
    assert table_copies == []
    with mock_aws(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(DynamoDBBackend, "transact_write_items", MOTO_S_OWN)
        client = _client()
        client.transact_write_items(
            TransactItems=[{"Put": {"TableName": TABLE, "Item": _item("checkpoint", v="7")}}]
        )
    assert len(table_copies) == 1  # the count sees moto's copy: the check above can fail
