"""hemisphere.moto.server's changes to the local endpoint answer what moto answers: stream
records written with json.dumps equal those of moto's own serializer. (The in-process task
messages are proven by every saga suite: tests' moto servers run hemisphere.moto.server.)"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

from hemisphere.moto.server import install_fast_stream_records, wire_value

REGION = "us-east-1"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def stream_records(table: str) -> list[dict[str, Any]]:
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    arn = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=table)["Table"][
        "LatestStreamArn"
    ]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records: list[dict[str, Any]] = streams.get_records(ShardIterator=iterator)["Records"]
    return records


def test_stream_records_are_the_same_document(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    item: dict[str, Any] = {
        "pk": {"S": "ORDER#o-1"},
        "n": {"N": "12.5"},
        "blob": {"B": b"\x00\x01"},
        "tags": {"SS": ["a", "b"]},
        "m": {"M": {"l": {"L": [{"S": "x"}, {"BOOL": True}, {"NULL": True}]}}},
    }
    dynamodb.put_item(TableName="t", Item=item)
    dynamodb.put_item(TableName="t", Item=item | {"n": {"N": "13"}})
    expected = stream_records("t")

    monkeypatch.setattr(DynamoDBStreamsHandler, "get_records", DynamoDBStreamsHandler.get_records)
    install_fast_stream_records()
    assert DynamoDBStreamsHandler.get_records.__name__ == "get_records"
    fast = stream_records("t")
    assert fast == expected
    assert len(fast) == 2 and fast[1]["dynamodb"]["OldImage"]["n"] == {"N": "12.5"}
    assert isinstance(fast[0]["dynamodb"]["ApproximateCreationDateTime"], datetime.datetime)


def test_wire_values() -> None:
    naive = datetime.datetime(2026, 1, 2, 3, 4, 5, 500999)
    assert wire_value(naive) == 1767323045.5
    assert wire_value(naive.replace(tzinfo=datetime.UTC)) == 1767323045.5
    assert wire_value(b"\x00\x01") == "AAE="
    assert wire_value({"b", "a"}) == ["a", "b"]
    with pytest.raises(TypeError):
        wire_value(object())
