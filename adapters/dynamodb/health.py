"""What a readiness probe asks DynamoDB: does the endpoint answer, and is the table there."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient


class TableMissingError(LookupError):
    """The endpoint answers but the projection table is gone (a local endpoint restarted)."""


async def check_table(client: DynamoDBClient, table_name: str) -> None:
    """Raises TableMissingError when the table does not exist, the client's error when the
    endpoint does not answer; returns when the table can serve reads."""
    try:
        await client.describe_table(TableName=table_name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise TableMissingError(f"table {table_name} does not exist") from error
        raise
