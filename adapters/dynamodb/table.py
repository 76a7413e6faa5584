"""Create and delete the projection table (see items.py for its layout)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from adapters.aws import error_code
from adapters.dynamodb import items
from adapters.dynamodb.client import endpoint_of, translate_errors

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import (
        GlobalSecondaryIndexTypeDef,
        TableDescriptionTypeDef,
    )

# How long creation or deletion may take before we give up (real DynamoDB: seconds to a
# minute; moto: immediate). Callers wanting less wrap the call in asyncio.timeout().
WAIT_SECONDS = 300.0


def _index(name: str, pk: str, sk: str) -> GlobalSecondaryIndexTypeDef:
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": pk, "KeyType": "HASH"},
            {"AttributeName": sk, "KeyType": "RANGE"},
        ],
        # ALL: list pages are read from the index alone, with no fetch back to the table.
        "Projection": {"ProjectionType": "ALL"},
    }


async def _describe(client: DynamoDBClient, table_name: str) -> TableDescriptionTypeDef | None:
    try:
        with translate_errors(endpoint_of(client)):
            return (await client.describe_table(TableName=table_name))["Table"]
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise


def _is_active(table: TableDescriptionTypeDef) -> bool:
    indexes = table.get("GlobalSecondaryIndexes", [])
    return table.get("TableStatus") == "ACTIVE" and all(
        index.get("IndexStatus") == "ACTIVE" for index in indexes
    )


def _check_layout(table_name: str, table: TableDescriptionTypeDef) -> None:
    # A table of the same name with another layout would fail every query with a
    # ValidationException; say so once, at start-up, instead.
    present = {index.get("IndexName") for index in table.get("GlobalSecondaryIndexes", [])}
    missing = {items.GSI1, items.GSI2} - present
    if missing:
        raise RuntimeError(
            f"table {table_name} exists without the indexes {sorted(missing)}: "
            "delete it or rebuild it with `hemisphere projections rebuild`"
        )


async def ensure_table(client: DynamoDBClient, table_name: str) -> None:
    """Create the table unless it exists, then wait until it and its indexes are ACTIVE.

    Idempotent, and safe when several instances start at once (a concurrent creation is
    waited for, not an error).
    """
    table = await _describe(client, table_name)
    if table is None:
        try:
            with translate_errors(endpoint_of(client)):
                await client.create_table(
                    TableName=table_name,
                    BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[
                        {"AttributeName": name, "AttributeType": "S"}
                        for name in (
                            items.PK,
                            items.SK,
                            items.GSI1_PK,
                            items.GSI1_SK,
                            items.GSI2_PK,
                            items.GSI2_SK,
                        )
                    ],
                    KeySchema=[
                        {"AttributeName": items.PK, "KeyType": "HASH"},
                        {"AttributeName": items.SK, "KeyType": "RANGE"},
                    ],
                    GlobalSecondaryIndexes=[
                        _index(items.GSI1, items.GSI1_PK, items.GSI1_SK),
                        _index(items.GSI2, items.GSI2_PK, items.GSI2_SK),
                    ],
                    # The subscription publisher reads the change stream; global tables
                    # need NEW_AND_OLD_IMAGES as well.
                    StreamSpecification={
                        "StreamEnabled": True,
                        "StreamViewType": "NEW_AND_OLD_IMAGES",
                    },
                )
        except ClientError as error:
            if error_code(error) != "ResourceInUseException":  # created meanwhile
                raise
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            table = await _wait_until_active(client, table_name)
    except TimeoutError:
        raise TimeoutError(f"table {table_name} is not ACTIVE after {WAIT_SECONDS:.0f}s") from None
    _check_layout(table_name, table)


async def _wait_until_active(client: DynamoDBClient, table_name: str) -> TableDescriptionTypeDef:
    # Our own loop rather than the `table_exists` waiter: that one sleeps 20 s between polls
    # and does not look at the indexes.
    delay = 0.05
    while True:
        table = await _describe(client, table_name)
        if table is not None and _is_active(table):
            return table
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


async def delete_table(client: DynamoDBClient, table_name: str) -> None:
    """Delete the table if it exists and wait until it is gone."""
    try:
        with translate_errors(endpoint_of(client)):
            await client.delete_table(TableName=table_name)
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        return
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            delay = 0.05
            while await _describe(client, table_name) is not None:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
    except TimeoutError:
        raise TimeoutError(f"table {table_name} still exists after {WAIT_SECONDS:.0f}s") from None
