"""The read side of the projections: resolvers.ports.ProjectionReader over the DynamoDB table.

Reads are eventually consistent (as AppSync over DynamoDB is), except the region control item,
which decides where writes go.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from adapters.dynamodb import items
from adapters.dynamodb.client import endpoint_of, translate_errors
from domain.aggregates import CUSTOMER, ORDER, PRODUCT, Aggregate, Snapshot
from domain.errors import BadRequestError, ProjectionStoreUnavailableError
from domain.model import Customer, Order, Page, Product, RegionControl

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import (
        KeysAndAttributesUnionTypeDef,
        QueryInputTypeDef,
    )

S = TypeVar("S", bound=Snapshot)

# BatchGetItem's limit of keys per request.
BATCH_GET_MAX_KEYS = 100


class DynamoProjectionReader:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        unprocessed_retries: int = 6,
        unprocessed_backoff: float = 0.02,
    ) -> None:
        self._client = client
        self._table = table_name
        self._endpoint = endpoint_of(client)
        self._unprocessed_retries = unprocessed_retries
        self._unprocessed_backoff = unprocessed_backoff

    # --- by id (DataLoader batches) ---------------------------------------------------------

    async def products_by_id(self, ids: Sequence[str]) -> Mapping[str, Product]:
        return await self._by_id(ids, PRODUCT)

    async def customers_by_id(self, ids: Sequence[str]) -> Mapping[str, Customer]:
        return await self._by_id(ids, CUSTOMER)

    async def orders_by_id(self, ids: Sequence[str]) -> Mapping[str, Order]:
        return await self._by_id(ids, ORDER)

    async def _by_id(
        self,
        ids: Sequence[str],
        aggregate: Aggregate[S],
    ) -> dict[str, S]:
        """The snapshots found among `ids`; missing ids are absent from the mapping."""
        # BatchGetItem rejects a request that names one key twice.
        unique = list(dict.fromkeys(ids))
        chunks = [
            unique[start : start + BATCH_GET_MAX_KEYS]
            for start in range(0, len(unique), BATCH_GET_MAX_KEYS)
        ]
        pages = await asyncio.gather(
            *(
                self._batch_get([items.key_to_wire(items.entity_key(aggregate, i)) for i in chunk])
                for chunk in chunks
            )
        )
        found: dict[str, S] = {}
        for page in pages:
            for raw in page:
                item = items.item_from_wire(raw)
                found[item["id"]] = aggregate.from_plain(item)
        return found

    async def _batch_get(self, keys: list[items.WireItem]) -> list[Mapping[str, Any]]:
        request: Mapping[str, KeysAndAttributesUnionTypeDef] = {self._table: {"Keys": keys}}
        found: list[Mapping[str, Any]] = []
        for attempt in range(self._unprocessed_retries + 1):
            if attempt:
                # UnprocessedKeys means throttling or the 16 MB response limit: back off a
                # little (with jitter, so concurrent loaders do not retry in step).
                delay = self._unprocessed_backoff * 2.0 ** (attempt - 1)
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
            with translate_errors(self._endpoint):
                response = await self._client.batch_get_item(RequestItems=request)
            found.extend(response.get("Responses", {}).get(self._table, []))
            unprocessed = response.get("UnprocessedKeys") or {}
            pending = unprocessed.get(self._table)
            if not pending or not pending.get("Keys"):
                return found
            request = unprocessed
        raise ProjectionStoreUnavailableError(
            f"the projection store at {self._endpoint} left keys unprocessed "
            f"after {self._unprocessed_retries} retries"
        )

    # --- pages -------------------------------------------------------------------------------

    async def products_page(
        self, category: str | None, limit: int, cursor: dict[str, Any] | None
    ) -> Page[Product]:
        """Products in id order, of one category (gsi1) or of all (gsi2)."""
        if category is None:
            index, partition_key, partition = items.GSI2, items.GSI2_PK, items.ALL_PRODUCTS
        else:
            index, partition_key = items.GSI1, items.GSI1_PK
            partition = items.category_partition(category)
        found, next_cursor = await self._query(
            index, partition_key, partition, limit, cursor, newest_first=False
        )
        return Page(items=[PRODUCT.from_plain(i) for i in found], cursor=next_cursor)

    async def orders_page_by_customer(
        self, customer_id: str, limit: int, cursor: dict[str, Any] | None
    ) -> Page[Order]:
        """A customer's orders, newest first (gsi1sk starts with createdAt)."""
        found, next_cursor = await self._query(
            items.GSI1,
            items.GSI1_PK,
            items.customer_orders_partition(customer_id),
            limit,
            cursor,
            newest_first=True,
        )
        return Page(items=[ORDER.from_plain(i) for i in found], cursor=next_cursor)

    async def _query(
        self,
        index: str,
        partition_key: str,
        partition: str,
        limit: int,
        cursor: dict[str, Any] | None,
        *,
        newest_first: bool,
    ) -> tuple[list[items.Item], dict[str, Any] | None]:
        if limit < 1:
            raise BadRequestError(f"limit must be at least 1, not {limit}")
        params: QueryInputTypeDef = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": f"{partition_key} = :partition",
            "ExpressionAttributeValues": {":partition": {"S": partition}},
            "Limit": limit,
            "ScanIndexForward": not newest_first,
        }
        if cursor is not None:
            params["ExclusiveStartKey"] = _start_key(index, partition_key, partition, cursor)
        with translate_errors(self._endpoint):
            response = await self._client.query(**params)
        found = [items.item_from_wire(raw) for raw in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        # DynamoDB returns a LastEvaluatedKey when a page is full even if nothing follows, so
        # the last page of a list can be empty: the same as AppSync over DynamoDB.
        return found, (items.item_from_wire(last) if last else None)

    # --- topology ----------------------------------------------------------------------------

    async def region_control(self) -> RegionControl | None:
        # Strongly consistent: the control item decides where writes go, and a stale one
        # would route them to a demoted primary.
        with translate_errors(self._endpoint):
            response = await self._client.get_item(
                TableName=self._table,
                Key=items.key_to_wire(items.control_key()),
                ConsistentRead=True,
            )
        raw = response.get("Item")
        return items.region_control_from_item(items.item_from_wire(raw)) if raw else None


def _start_key(
    index: str, partition_key: str, partition: str, cursor: Mapping[str, Any]
) -> items.WireItem:
    """The ExclusiveStartKey of a cursor, once it is known to belong to this very list.

    A cursor of another list (or a forged one) would make DynamoDB answer with a
    ValidationException or, worse, silently start elsewhere; refuse it as a bad request.
    """
    if (
        set(cursor) != items.INDEX_KEYS[index]
        or not all(isinstance(value, str) and value for value in cursor.values())
        or cursor[partition_key] != partition
    ):
        raise BadRequestError("the page cursor does not belong to this list")
    return items.key_to_wire(cursor)
