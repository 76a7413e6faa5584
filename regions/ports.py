"""What the replicator (regions.replication) and the fencing (regions.control) need from the
backends: a region's change stream and table, another region's replica, and the two places the
topology lives (implemented by adapters.dynamodb.replication and adapters.postgres.topology).

Items travel in DynamoDB's wire format (`{"pk": {"S": "ORDER#1"}, "version": {"N": "3"}}`):
the replicator copies items it does not need to understand, and converting them to plain
values and back would only risk changing them on the way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from domain.errors import BackendUnavailableError, HemisphereError
from domain.model import RegionControl

WireItem = Mapping[str, Mapping[str, Any]]

# The attributes DynamoDB global tables (version 2017) put on a replicated write: the region
# the change was made in, and when (epoch seconds, with a fraction). Same names, so that tools
# that know global tables read them alike.
ORIGIN_REGION: Final = "aws:rep:updateregion"
ORIGIN_TIME: Final = "aws:rep:updatetime"


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One change of a region's table, as its stream tells it."""

    sequence_number: str
    key: WireItem
    # The item after the change; None when it was removed.
    new_image: WireItem | None
    old_image: WireItem | None
    # When the change was made (the record's creation time, epoch seconds).
    created_at: float


class StreamShard(Protocol):
    @property
    def shard_id(self) -> str: ...

    @property
    def parent_id(self) -> str | None: ...


class CheckpointExpiredError(HemisphereError):
    """The stream no longer holds the records after a checkpoint (older than its retention):
    the changes in between can only be recovered by copying the whole table."""


class RecordReader(Protocol):
    async def read(self) -> tuple[Sequence[StreamRecord], bool]:
        """The next records of the shard (possibly none yet), and whether the shard has ended.
        Raises CheckpointExpiredError when the position it starts from was trimmed."""
        ...


class SourceTable(Protocol):
    """This region's table: its change stream, and a full read for catching a replica up."""

    async def latest_stream(self) -> str | None: ...

    async def shards(self, stream: str) -> Sequence[StreamShard]: ...

    async def open_shard(self, stream: str, shard_id: str, after: str | None) -> RecordReader:
        """Read `shard_id` from just after `after` (from its oldest record when None)."""
        ...

    def scan(self) -> AsyncIterator[WireItem]:
        """Every item of the table (strongly consistent pages)."""
        ...


class ReplicaTable(Protocol):
    """Another region's table, written only by conditional writes (last writer wins)."""

    @property
    def region(self) -> str: ...

    async def put_if_newer(self, item: WireItem, version: int) -> bool:
        """Write `item` unless the replica holds a version of it at least as new; returns
        whether it wrote. Raises BackendUnavailableError when the replica cannot be reached."""
        ...

    async def delete_if_not_newer(self, key: WireItem, version: int) -> bool:
        """Delete the item unless the replica holds a newer version than `version`."""
        ...

    async def is_seeded(self, source: str) -> bool:
        """Whether the replica holds a whole copy of `source`'s table (a mark written after
        a full copy; a replica whose table was recreated empty has lost it)."""
        ...

    async def mark_seeded(self, source: str) -> None: ...


class ReplicaUnavailableError(BackendUnavailableError):
    """Another region's table cannot be reached now; its changes wait and are retried."""


# --- the topology (regions.control) -----------------------------------------------------------


class TopologyStore(Protocol):
    """One place the topology record lives (the replicated control item, PostgreSQL)."""

    @property
    def name(self) -> str: ...

    async def read(self) -> RegionControl | None: ...

    async def claim(self, control: RegionControl) -> bool:
        """Write `control` if the stored epoch is lower (or the same epoch names the same
        primary); returns False, writing nothing, if a newer or rival claim is stored."""
        ...
