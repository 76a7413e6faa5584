"""In-memory fakes of the stream publisher's ports (no tests here): a change stream with
shards, checkpoints fenced by a lease, a sink that records what it is given; and a collector
of a broker subscription."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass, field

from domain.aggregates import Snapshot
from subscriptions.ports import Message


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until `predicate()` holds (not every state change has an event to await)."""
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {within}s")
        await asyncio.sleep(0.01)


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class _LeaseRow:
    holder: str
    token: int
    expires: float


class InMemoryLeaseStore:
    """LeaseStore with the DynamoDB adapter's rules: take if absent, expired or one's own;
    a new token each time."""

    def __init__(self) -> None:
        self.row: _LeaseRow | None = None
        self.tokens_issued = 0
        self.fail_with: Exception | None = None
        self.hang = False
        self.hangs = 0  # the next this many calls are never answered

    async def acquire(self, holder: str, *, now: float, duration: float) -> int | None:
        await self._maybe_fail()
        if self.row is not None and self.row.expires >= now and self.row.holder != holder:
            return None
        self.tokens_issued += 1
        self.row = _LeaseRow(holder, self.tokens_issued, now + duration)
        return self.tokens_issued

    async def renew(self, holder: str, token: int, *, now: float, duration: float) -> bool:
        await self._maybe_fail()
        if self.row is None or (self.row.holder, self.row.token) != (holder, token):
            return False
        self.row.expires = now + duration
        return True

    async def release(self, holder: str, token: int) -> None:
        await self._maybe_fail()
        if self.row is not None and (self.row.holder, self.row.token) == (holder, token):
            self.row.expires = 0

    def holds(self, holder: str, token: int) -> bool:
        return self.row is not None and (self.row.holder, self.row.token) == (holder, token)

    async def _maybe_fail(self) -> None:
        if self.hang or self.hangs > 0:
            self.hangs = max(0, self.hangs - 1)
            await asyncio.Event().wait()
        if self.fail_with is not None:
            raise self.fail_with


@dataclass(frozen=True)
class Shard:
    shard_id: str
    parent_id: str | None = None


@dataclass(frozen=True)
class Change:
    sequence_number: str
    snapshot: Snapshot | None
    created_at: float | None = None


@dataclass
class FakeShardLog:
    changes: list[Change] = field(default_factory=list)
    closed: bool = False


class InMemoryStream:
    """ChangeStream: shards are lists of changes; sequence numbers are `<shard>:<n>`."""

    def __init__(self, arn: str = "stream-1") -> None:
        self.arn = arn
        self.shard_list: list[Shard] = []
        self.logs: dict[str, FakeShardLog] = {}
        self.reads = 0

    def add_shard(self, shard_id: str, parent_id: str | None = None) -> None:
        self.shard_list.append(Shard(shard_id, parent_id))
        self.logs[shard_id] = FakeShardLog()

    def append(
        self, shard_id: str, snapshot: Snapshot | None, created_at: float | None = None
    ) -> str:
        log = self.logs[shard_id]
        sequence = f"{shard_id}:{len(log.changes) + 1:06d}"
        log.changes.append(Change(sequence, snapshot, created_at))
        return sequence

    def close(self, shard_id: str) -> None:
        self.logs[shard_id].closed = True

    async def latest_stream(self) -> str | None:
        return self.arn

    async def shards(self, stream: str) -> Sequence[Shard]:
        return list(self.shard_list)

    async def open_shard(self, stream: str, shard_id: str, after: str | None) -> _Reader:
        log = self.logs[shard_id]
        start = 0
        if after is not None:
            start = next(i for i, c in enumerate(log.changes) if c.sequence_number == after) + 1
        return _Reader(self, log, start)


class _Reader:
    def __init__(self, stream: InMemoryStream, log: FakeShardLog, start: int) -> None:
        self._stream = stream
        self._log = log
        self._next = start

    async def read(self) -> tuple[Sequence[Change], bool]:
        self._stream.reads += 1
        await asyncio.sleep(0)
        changes = self._log.changes[self._next : self._next + 3]  # small pages on purpose
        self._next += len(changes)
        ended = self._log.closed and self._next >= len(self._log.changes)
        return changes, ended


@dataclass(frozen=True)
class Saved:
    sequence_number: str | None
    finished: bool


class InMemoryCheckpoints:
    """CheckpointStore fenced by an InMemoryLeaseStore, as the DynamoDB one is."""

    def __init__(self, lease: InMemoryLeaseStore) -> None:
        self._lease = lease
        self.saved: dict[str, Saved] = {}
        self.writes = 0
        self.starts: dict[str, float] = {}
        # How long each save takes (a conditional write to a busy endpoint).
        self.save_delay = 0.0

    async def load(self, stream: str) -> dict[str, Saved]:
        return dict(self.saved)

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
        if self.save_delay:
            await asyncio.sleep(self.save_delay)
        if not self._lease.holds(holder, token):
            return False
        self.writes += 1
        self.saved[shard_id] = Saved(sequence_number, finished)
        return True

    async def forget(
        self, stream: str, shard_ids: Collection[str], *, holder: str, token: int
    ) -> bool:
        if not self._lease.holds(holder, token):
            return False
        for shard_id in shard_ids:
            self.saved.pop(shard_id, None)
        return True

    async def publication_start(self, stream: str) -> float | None:
        return self.starts.get(stream)

    async def claim_publication_start(self, stream: str, at: float) -> float:
        return self.starts.setdefault(stream, at)


class RecordingSink:
    """PublicationSink: records (id, version); can fail the next calls on demand."""

    def __init__(self) -> None:
        self.published: list[tuple[str, int]] = []
        self.failures: list[Exception] = []
        self.arrived = asyncio.Event()

    async def publish(self, snapshot: Snapshot) -> None:
        await asyncio.sleep(0)
        if self.failures:
            raise self.failures.pop(0)
        self.published.append((snapshot.id, snapshot.version))
        self.arrived.set()

    async def wait_for(self, count: int, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while len(self.published) < count:
                self.arrived.clear()
                await self.arrived.wait()


class Collector:
    """Consumes a broker subscription in a task, keeping what arrives."""

    def __init__(self, iterator: AsyncIterator[Message]) -> None:
        self.received: list[Message] = []
        self.arrived = asyncio.Event()
        self.task = asyncio.create_task(self._consume(iterator))

    @classmethod
    async def start(cls, iterator: AsyncIterator[Message]) -> Collector:
        collector = cls(iterator)
        await asyncio.sleep(0)  # an async generator registers on its first step
        return collector

    async def _consume(self, iterator: AsyncIterator[Message]) -> None:
        async for message in iterator:
            self.received.append(message)
            self.arrived.set()

    async def wait_for(self, count: int, within: float = 5.0) -> list[Message]:
        async with asyncio.timeout(within):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
