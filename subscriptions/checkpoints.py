"""What the stream publisher needs from the table's change stream and from its checkpoints
(ports, implemented by adapters.dynamodb.stream and .leases), and which shards it may read next.

A DynamoDB stream is a tree of shards: a shard is closed after about four hours (or when its
partition splits) and continues in child shards. The changes of one item stay in one line of
descent, so reading every parent to its end before its children keeps each item's changes in
order, and shards of different lines may be read side by side.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from domain.aggregates import Snapshot


class StreamShard(Protocol):
    @property
    def shard_id(self) -> str: ...

    @property
    def parent_id(self) -> str | None: ...


class Change(Protocol):
    """One stream record: its position, and the entity's new snapshot; None for anything
    that is not published (control items: topology, lease, checkpoints; removals)."""

    @property
    def sequence_number(self) -> str: ...

    @property
    def snapshot(self) -> Snapshot | None: ...

    @property
    def created_at(self) -> float | None:
        """When the change was made (epoch seconds, the stream's approximate time)."""
        ...


class Checkpoint(Protocol):
    """How far a shard was published: every change up to `sequence_number` (None: nothing
    yet), and whether the shard was read to its end."""

    @property
    def sequence_number(self) -> str | None: ...

    @property
    def finished(self) -> bool: ...


class ShardReader(Protocol):
    async def read(self) -> tuple[Sequence[Change], bool]:
        """The next changes of the shard (possibly none yet), and whether the shard has
        ended (closed and read to its end: there will never be more)."""
        ...


class ChangeStream(Protocol):
    async def latest_stream(self) -> str | None:
        """The table's current stream (its ARN), or None if the table has none."""
        ...

    async def shards(self, stream: str) -> Sequence[StreamShard]: ...

    async def open_shard(self, stream: str, shard_id: str, after: str | None) -> ShardReader:
        """Read `shard_id` from just after `after` (from its oldest record when None)."""
        ...


class CheckpointStore(Protocol):
    async def load(self, stream: str) -> Mapping[str, Checkpoint]:
        """The checkpoints of `stream`, by shard id."""
        ...

    async def save(
        self,
        stream: str,
        shard_id: str,
        sequence_number: str | None,
        *,
        finished: bool,
        holder: str,
        token: int,
    ) -> bool:
        """Record progress, only if `holder` still holds the lease under fencing `token`.
        Returns False when fenced out (nothing written)."""
        ...

    async def forget(
        self, stream: str, shard_ids: Collection[str], *, holder: str, token: int
    ) -> bool:
        """Delete the checkpoints of shards the stream no longer lists (fenced as `save`)."""
        ...

    async def publication_start(self, stream: str) -> float | None:
        """From when `stream`'s changes are published (epoch seconds), once claimed."""
        ...

    async def claim_publication_start(self, stream: str, at: float) -> float:
        """Set the publication start of `stream` to `at` unless one is set already (the
        first claim wins); returns the start in force."""
        ...


def ready_shards(
    shards: Sequence[StreamShard],
    finished: Collection[str],
    busy: Collection[str],
) -> list[StreamShard]:
    """The shards to start reading now: not finished, not being read, and whose parent is
    finished or no longer listed (trimmed after 24 h: nothing left to wait for)."""
    listed = {shard.shard_id for shard in shards}
    return [
        shard
        for shard in shards
        if shard.shard_id not in finished
        and shard.shard_id not in busy
        and (
            shard.parent_id is None or shard.parent_id not in listed or shard.parent_id in finished
        )
    ]
