"""The local endpoint's DynamoDB actions are atomic (hemisphere/moto/atomic_items.py): a
conditional write's check and write are not split by another request's write, and a Scan
never iterates a table another request is changing.

moto serves each request on a thread of its own; here the threads are made to switch as often
as Python allows, so that a write landing between another's check and write is likely (it
happened in 45 of 200 rounds of the first test without the lock, and the second test's
scans failed with "dictionary changed size during iteration")."""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from adapters.aws import error_code
from hemisphere.moto import atomic_items

TABLE = "t"
WRITERS = 6


@pytest.fixture
def client() -> Iterator[Any]:
    atomic_items.install()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with mock_aws():
            client = boto3.client(
                "dynamodb",
                region_name="us-east-1",
                aws_access_key_id="x",
                aws_secret_access_key="x",
            )
            client.create_table(
                TableName=TABLE,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            yield client
    finally:
        sys.setswitchinterval(interval)


def _all_at_once(calls: list[Callable[[], None]]) -> None:
    start = threading.Barrier(len(calls))
    failures: list[BaseException] = []

    def run(call: Callable[[], None]) -> None:
        start.wait()
        try:
            call()
        except BaseException as error:  # reported below, on the test's thread
            failures.append(error)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures


def test_concurrent_writes_of_one_item_each_only_if_newer_keep_the_highest(client: Any) -> None:
    def put_if_newer(key: str, version: int) -> Callable[[], None]:
        def put() -> None:
            try:
                client.put_item(
                    TableName=TABLE,
                    Item={"pk": {"S": key}, "version": {"N": str(version)}},
                    ConditionExpression="attribute_not_exists(pk) OR version < :v",
                    ExpressionAttributeValues={":v": {"N": str(version)}},
                )
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise

        return put

    lower = []
    for round_ in range(100):
        key = f"ITEM#{round_}"
        versions = random.sample(range(1, WRITERS + 1), WRITERS)
        _all_at_once([put_if_newer(key, version) for version in versions])
        item = client.get_item(TableName=TABLE, Key={"pk": {"S": key}})["Item"]
        if int(item["version"]["N"]) != WRITERS:
            lower.append((key, item["version"]["N"]))
    assert lower == []


def test_a_scan_beside_inserts_answers(client: Any) -> None:
    def insert(writer: int) -> Callable[[], None]:
        def put() -> None:
            for n in range(200):
                client.put_item(TableName=TABLE, Item={"pk": {"S": f"ITEM#{writer}-{n}"}})

        return put

    def scan() -> None:
        for _ in range(40):
            client.scan(TableName=TABLE)

    _all_at_once([insert(w) for w in range(WRITERS)] + [scan, scan])
    assert client.scan(TableName=TABLE, Select="COUNT")["Count"] == WRITERS * 200
