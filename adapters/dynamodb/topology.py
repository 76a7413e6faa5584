"""regions.ports.TopologyStore on a region's table: the control item CONTROL/TOPOLOGY (its
version is its epoch, so the replicator carries a promotion to every region and an older
epoch never replaces a newer one)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.dynamodb.reader import DynamoProjectionReader
from adapters.dynamodb.writer import DynamoProjectionWriter
from domain.model import RegionControl

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.client import DynamoDBClient


class DynamoTopologyStore:
    def __init__(self, client: DynamoDBClient, table_name: str, region: str) -> None:
        self._reader = DynamoProjectionReader(client, table_name)
        self._writer = DynamoProjectionWriter(client, table_name)
        self._region = region

    @property
    def name(self) -> str:
        return f"dynamodb:{self._region}"

    async def read(self) -> RegionControl | None:
        return await self._reader.region_control()

    async def claim(self, control: RegionControl) -> bool:
        return await self._writer.put_region_control(control)
