"""The stand-in for DynamoDB global tables: each region's replicator applies the changes made
in its region to every other region's table.

    region A's stream ──▶ pipeline A→B (lease, checkpoints) ──▶ B's table
                      └─▶ pipeline A→C (lease, checkpoints) ──▶ C's table

What a region sends on, and how a replica takes it (last writer wins by version, origin marks
against loops), is pure: regions.replication_rules. This module runs it.

Each target has its own pipeline with its own lease and per-shard checkpoints (in the source
table): a target that is down stalls only its own pipeline, which retries with backoff and,
when the target returns, resumes from its checkpoint. With no checkpoint (first start), or
one older than the stream's retention, the pipeline first copies the whole table (last
writer wins makes the overlap with the stream harmless).

It stays one module over 400 lines: a pipeline's lease, shard reads, checkpoints, retries and
full copies move one state (standby, catching-up, replicating, unreachable) together.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.errors import BackendUnavailableError
from regions.ports import (
    CheckpointExpiredError,
    RecordReader,
    ReplicaTable,
    ReplicaUnavailableError,
    SourceTable,
    StreamRecord,
    StreamShard,
)
from regions.replication_rules import (
    Action,
    LagStats,
    Put,
    latest_per_key,
    marked,
    origin_of,
    replication_action,
    version_of,
)
from subscriptions.checkpoints import CheckpointStore, ready_shards
from subscriptions.lease import LeaseKeeper

log = logging.getLogger(__name__)


def pipeline_name(source: str, target: str) -> str:
    """The lease and checkpoints of the pipeline from `source`'s stream to `target`."""
    return f"replicator#{source}>{target}"


# --- one pipeline -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicationTimings:
    # Between reads of a shard that had nothing new: the floor of the lag (real streams
    # allow 5 reads/s per shard; the local endpoint has no such limit, but each read costs it
    # a few ms of CPU).
    poll_interval: float = 0.05
    # After this long without a change to send (only bookkeeping records, or none), poll at
    # idle_poll_interval instead: an idle region's pipelines cost the endpoint 4x less, and
    # the first change after a pause waits at most this much longer.
    idle_after: float = 10.0
    idle_poll_interval: float = 0.2
    # Checkpoint after applying at most this often: a crash re-sends at most this much, and
    # re-sent changes are no-ops.
    checkpoint_interval: float = 0.5
    # With only bookkeeping records going by (leases, our own checkpoints), checkpoint
    # rarely: each checkpoint is one more record.
    idle_checkpoint_interval: float = 60.0
    relist_interval: float = 5.0
    min_backoff: float = 0.1
    max_backoff: float = 5.0
    # Writes in flight to the target at once.
    concurrency: int = 16
    # Batches of one shard read and being applied at once, before a read waits for the
    # oldest: a round trip to a far region no longer holds the next changes back. A busy
    # shard gives a batch per poll (50 ms) and a batch to a far region lands 250-500 ms
    # later under load, so 4 made the reads wait (read lag p99 440-500 ms in the drill, p50
    # 40); 32 covers 1.6 s of round trips, at most 32 x 1,000 records held.
    batches_in_flight: int = 32


class _FencedOutError(Exception):
    """A checkpoint write was refused: another process holds a newer lease."""


@dataclass
class _Shard:
    reader: RecordReader
    saved: str | None
    # The last record whose batch, and every batch before it, has been applied: what a
    # checkpoint may say.
    position: str | None
    saved_at: float = field(default_factory=time.monotonic)
    unsaved_writes: bool = False
    # Batches read and being applied, oldest first, with the last record of each.
    in_flight: deque[tuple[asyncio.Task[bool], str]] = field(default_factory=deque)
    # The checkpoint being saved beside the reads, and the position it saves.
    saving: tuple[asyncio.Task[bool], str | None] | None = None


class TargetReplicator:
    """The pipeline from `region`'s stream to one other region's table."""

    def __init__(
        self,
        region: str,
        source: SourceTable,
        target: ReplicaTable,
        checkpoints: CheckpointStore,
        lease: LeaseKeeper,
        timings: ReplicationTimings | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.region = region
        self.target = target
        self._source = source
        self._checkpoints = checkpoints
        self._lease = lease
        self._timings = timings or ReplicationTimings()
        self._clock = clock
        self._slots = asyncio.Semaphore(self._timings.concurrency)
        self.lag = LagStats()
        # Changes made before this pipeline began following its stream (while it was not
        # running, or before a full copy): their wait is catch-up, not the lag of a running
        # replication, and is kept apart (a region's return shows there).
        self.catch_up = LagStats()
        # Where the lag goes: from a change to the read that found it (the stream's delay,
        # the poll interval, a busy source endpoint); the rest is the write to the target.
        self.read_lag = LagStats()
        self._following_since = math.inf
        self.state = "standby"
        self.error: str | None = None
        self.full_copies = 0
        # Changes sent to the target, and those that changed it (not already there).
        self.sent = 0
        self.written = 0
        # Creation time of the oldest change read but not yet in the target.
        # When the oldest change of each batch in flight was made (status: pending_ms).
        self._pending: dict[int, float] = {}
        # Set when the target answers again after an outage, and every relist_interval:
        # then check that it still holds our copy.
        self._check_target_copy = False
        # The question "does the target still hold our copy?" while it is being asked.
        self._copy_check: asyncio.Task[bool] | None = None
        # The source stream's shards while they are being listed.
        self._listing: asyncio.Task[Sequence[StreamShard]] | None = None
        # When a change was last sent (monotonic): the polling slows down after a pause.
        self._sent_at = -math.inf

    def status(self) -> dict[str, Any]:
        pending = min(self._pending.values(), default=None)
        return {
            "state": self.state,
            "lag_ms": self.lag.as_ms(),
            "lag_histogram": self.lag.histogram.as_json(),
            "catch_up_ms": self.catch_up.as_ms(),
            "read_lag_ms": self.read_lag.as_ms(),
            "pending_ms": (None if pending is None else round((self._clock() - pending) * 1000, 1)),
            "sent": self.sent,
            "written": self.written,
            "full_copies": self.full_copies,
            "error": self.error,
        }

    async def run(self) -> None:
        """Keep the lease; replicate while holding it. Runs until cancelled."""
        keeper = asyncio.create_task(self._lease.run(), name=f"lease-{self.target.region}")
        try:
            while True:
                token = await self._lease.acquired()
                await self._hold(token)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def release(self) -> None:
        """Give the lease up (after run() was cancelled), so another process takes over."""
        await self._lease.release()

    async def _hold(self, token: int) -> None:
        log.info("replication %s→%s: running (token %d)", self.region, self.target.region, token)
        work = asyncio.create_task(self._replicate(token))
        lost = asyncio.create_task(self._lease.lost(token))
        try:
            await asyncio.wait({work, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (work, lost):
                task.cancel()
            await asyncio.gather(work, lost, return_exceptions=True)
            self.state = "standby"
            self._pending.clear()  # whoever holds the lease next sends it

    async def _replicate(self, token: int) -> None:
        backoff = self._timings.min_backoff
        while True:
            started = time.monotonic()
            try:
                await self._replicate_stream(token)
            except _FencedOutError:
                self._lease.abandon(token)
                return
            except Exception as error:
                self.error = str(error)
                # The target down is the expected outage; anything else (this region's own
                # endpoint down, an unexpected answer) is an error until the next attempt.
                self.state = (
                    "unreachable" if isinstance(error, ReplicaUnavailableError) else "error"
                )
                log.warning(
                    "replication %s→%s: %s; starting over in %.1f s",
                    self.region,
                    self.target.region,
                    error,
                    backoff,
                    exc_info=not isinstance(error, BackendUnavailableError),
                )
                if time.monotonic() - started > 10 * self._timings.max_backoff:
                    backoff = self._timings.min_backoff  # it ran well for a while: a new fault
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._timings.max_backoff)

    async def _replicate_stream(self, token: int) -> None:
        timings = self._timings
        stream = await self._source.latest_stream()
        if stream is None:
            self.error = "the source table has no stream"
            await asyncio.sleep(timings.relist_interval)
            return
        stored = await self._checkpoints.load(stream)
        self._check_target_copy = False
        if not stored or not await self.target.is_seeded(self.region):
            await self._full_copy()
        if not stored:
            # Copied: from now on the stream is enough, from its oldest record. Saying so in
            # the checkpoints keeps a restart (a lost lease, a target outage) from copying
            # the whole table again.
            for listed in await self._source.shards(stream):
                if not await self._checkpoints.save(
                    stream,
                    listed.shard_id,
                    None,
                    finished=False,
                    holder=self._lease.holder,
                    token=token,
                ):
                    raise _FencedOutError()
        finished = {shard_id for shard_id, cp in stored.items() if cp.finished}
        resume = {shard_id: cp.sequence_number for shard_id, cp in stored.items()}
        known = set(resume)
        open_shards: dict[str, _Shard] = {}
        try:
            await self._follow(stream, token, open_shards, finished, resume, known)
        finally:
            # Fenced out, cancelled, failed: what was still being sent is abandoned (its
            # records are after the checkpoint, so whoever replicates next sends them).
            pending: list[asyncio.Task[Any]] = [
                task for shard in open_shards.values() for task, _ in shard.in_flight
            ]
            # A save cut short leaves the last checkpoint: the changes after it are sent
            # again, which last writer wins makes a no-op.
            pending += [shard.saving[0] for shard in open_shards.values() if shard.saving]
            pending += [task for task in (self._copy_check, self._listing) if task is not None]
            self._copy_check = self._listing = None
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _follow(
        self,
        stream: str,
        token: int,
        open_shards: dict[str, _Shard],
        finished: set[str],
        resume: dict[str, str | None],
        known: set[str],
    ) -> None:
        """Read every open shard in turn, send what it holds, checkpoint; forever."""
        timings = self._timings
        self._following_since = self._clock()
        listed_at = -math.inf
        while True:
            if self._listing is None and time.monotonic() - listed_at >= timings.relist_interval:
                # Now and then, not only after a write failed: a target whose table was
                # recreated empty while nothing was sent to it must get its copy too.
                self._check_target_copy = True
                # Listed beside the reads (a request to the source's endpoint, slow when it
                # is busy); waited for only when no shard is open to read meanwhile.
                self._listing = asyncio.create_task(self._source.shards(stream))
            if self._listing is not None and (self._listing.done() or not open_shards):
                listing, self._listing = self._listing, None
                shards = await listing
                listed_at = time.monotonic()
                gone = known - {listed.shard_id for listed in shards}
                if gone and not await self._checkpoints.forget(
                    stream, gone, holder=self._lease.holder, token=token
                ):
                    raise _FencedOutError()
                known -= gone
                for ready in ready_shards(shards, finished, set(open_shards)):
                    after = resume.get(ready.shard_id)
                    reader = await self._source.open_shard(stream, ready.shard_id, after)
                    open_shards[ready.shard_id] = _Shard(reader, after, after)
                    known.add(ready.shard_id)
            self.state = "replicating"
            read_any = False
            for shard_id, shard in list(open_shards.items()):
                try:
                    records, ended = await shard.reader.read()
                except CheckpointExpiredError as error:
                    log.warning("replication %s→%s: %s", self.region, self.target.region, error)
                    await self._settle(shard, wait=True, everything=True)
                    await self._full_copy()
                    shard.reader = await self._source.open_shard(stream, shard_id, None)
                    continue
                if records:
                    read_any = True
                    self._note_read(records)
                    # Applied beside the next reads: a batch waits one round trip to the
                    # target, and the changes read meanwhile need not wait for it (last
                    # writer wins makes any order of the writes safe).
                    applying = asyncio.create_task(self._apply(records))
                    shard.in_flight.append((applying, records[-1].sequence_number))
                await self._settle(
                    shard, wait=len(shard.in_flight) > self._timings.batches_in_flight
                )
                if ended:
                    await self._settle(shard, wait=True, everything=True)
                    await self._saved(shard, wait=True)
                    await self._save(stream, shard_id, shard, token, finished=True)
                    finished.add(shard_id)
                    del open_shards[shard_id]
                    listed_at = -math.inf  # its children are listed now
                elif await self._saved(shard, wait=False) and self._checkpoint_due(shard):
                    self._save_beside(stream, shard_id, shard, token)
            self.error = None
            await self._check_copy_beside()
            if not read_any:
                idle = time.monotonic() - self._sent_at >= timings.idle_after
                await asyncio.sleep(timings.idle_poll_interval if idle else timings.poll_interval)

    async def _check_copy_beside(self) -> None:
        """When asked to (after a target outage, and every relist_interval), find out whether
        the target still holds our copy: it may have come back empty (its table recreated),
        and then the stream since our checkpoint is not enough. The question goes beside the
        reads: its answer is a round trip to the target (up to 250 ms across regions), which
        the changes made meanwhile need not wait for (every 5 s they did: the lag's p99)."""
        if self._check_target_copy and self._copy_check is None:
            self._check_target_copy = False
            self._copy_check = asyncio.create_task(self._target_keeps_copy())
        if self._copy_check is not None and self._copy_check.done():
            check, self._copy_check = self._copy_check, None
            if not check.result():
                await self._full_copy()

    def _note_read(self, records: Sequence[StreamRecord]) -> None:
        read_at = self._clock()
        for record in records:
            if not self._is_catch_up(record.created_at):  # catch-up says nothing here
                self.read_lag.record(read_at - record.created_at)

    def _is_catch_up(self, created_at: float) -> bool:
        """Whether a change was made before this pipeline began following its stream (while
        it was not running): its wait is catch-up, not lag. A stream's creation times may be
        whole seconds: a second's slack."""
        return created_at < self._following_since - 1.0

    async def _settle(self, shard: _Shard, *, wait: bool, everything: bool = False) -> None:
        """Take the applied batches off the front of `shard.in_flight`, moving its position
        on; with `wait`, first wait for the oldest (for all of them with `everything`)."""
        while shard.in_flight:
            applying, last = shard.in_flight[0]
            if not applying.done():
                if not wait:
                    return
                await asyncio.wait({applying})
                wait = everything
            shard.in_flight.popleft()
            if applying.result():  # raises what the batch raised (cancellation, fencing)
                shard.unsaved_writes = True
                self._sent_at = time.monotonic()
            shard.position = last

    async def _target_keeps_copy(self) -> bool:
        """Whether the target still holds our copy; a target that does not answer now is
        asked again at the next check (its writes wait in _retrying meanwhile)."""
        try:
            return await self.target.is_seeded(self.region)
        except BackendUnavailableError as error:
            log.debug(
                "replication %s→%s: seed mark not read (%s)", self.region, self.target.region, error
            )
            self._check_target_copy = True
            return True

    def _checkpoint_due(self, shard: _Shard) -> bool:
        if shard.position == shard.saved:
            return False
        since = time.monotonic() - shard.saved_at
        if shard.unsaved_writes:
            return since >= self._timings.checkpoint_interval
        return since >= self._timings.idle_checkpoint_interval

    async def _save(
        self, stream: str, shard_id: str, shard: _Shard, token: int, *, finished: bool
    ) -> None:
        saved = await self._checkpoints.save(
            stream,
            shard_id,
            shard.position,
            finished=finished,
            holder=self._lease.holder,
            token=token,
        )
        if not saved:
            raise _FencedOutError()
        shard.saved, shard.saved_at, shard.unsaved_writes = shard.position, time.monotonic(), False

    def _save_beside(self, stream: str, shard_id: str, shard: _Shard, token: int) -> None:
        """Save `shard`'s position as a task beside the reads: a conditional write to the
        checkpoints' table, which under load on the source's endpoint took long enough, every
        checkpoint_interval, to hold back the changes made meanwhile (the lag's tail)."""
        position = shard.position
        saving = self._checkpoints.save(
            stream, shard_id, position, finished=False, holder=self._lease.holder, token=token
        )
        shard.saving = (asyncio.create_task(saving), position)
        shard.saved_at, shard.unsaved_writes = time.monotonic(), False

    async def _saved(self, shard: _Shard, *, wait: bool) -> bool:
        """Whether no save of `shard` is on its way (with `wait`, after it lands); a save that
        landed moves the saved position on, or, refused, says another holds the lease."""
        if shard.saving is None:
            return True
        task, position = shard.saving
        if not task.done():
            if not wait:
                return False
            await asyncio.wait({task})
        shard.saving = None
        if not task.result():
            raise _FencedOutError()
        shard.saved = position
        return True

    # --- writing to the target -------------------------------------------------------------

    async def _apply(self, records: Sequence[StreamRecord]) -> bool:
        """Send the batch's changes to the target, retrying while it is down (a target that
        is down holds back only this pipeline). Returns whether there was anything to send."""
        actions = [
            action
            for record in records
            if (action := replication_action(record, self.region)) is not None
        ]
        if not actions:
            return False
        latest = latest_per_key(actions)
        batch = id(latest)
        self._pending[batch] = min(action.created_at for action in latest)
        try:
            await self._retrying(functools.partial(self._send, latest, measure=True))
        finally:
            self._pending.pop(batch, None)
        self.sent += len(latest)
        return True

    async def _send(self, actions: Sequence[Action], *, measure: bool = False) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for action in actions:
                    group.create_task(self._send_one(action, measure))
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None

    async def _send_one(self, action: Action, measure: bool) -> None:
        async with self._slots:
            sent_at = self._clock()
            if isinstance(action, Put):
                written = await self.target.put_if_newer(action.item, action.version)
            else:
                written = await self.target.delete_if_not_newer(action.key, action.version)
            answered_at = self._clock()
        # Lag is measured on the writes that changed the target: a change it already had
        # (a replay after a copy or a restart) says nothing about how far behind it is. The
        # write is taken to land halfway through its round trip: across regions the request
        # arrives one one-way latency after it left, and the answer takes as long back.
        if written:
            self.written += 1
            if measure:
                landed = (sent_at + answered_at) / 2 - action.created_at
                if self._is_catch_up(action.created_at):
                    self.catch_up.record(landed)
                else:
                    self.lag.record(landed)

    async def _retrying(
        self, attempt: Callable[[], Awaitable[None]], *, working: str = "replicating"
    ) -> None:
        """Make `attempt` until the target takes it; `working` is the state it is made in
        (a full copy's writes are catching-up), which a recovered target returns to."""
        delay = self._timings.min_backoff
        while True:
            try:
                await attempt()
                if self.state == "unreachable":
                    log.info("replication %s→%s: target back", self.region, self.target.region)
                    self._check_target_copy = True
                self.state = working
                self.error = None
                return
            except BackendUnavailableError as error:
                if self.state != "unreachable":
                    log.warning(
                        "replication %s→%s: target unreachable (%s); retrying",
                        self.region,
                        self.target.region,
                        error,
                    )
                self.state, self.error = "unreachable", str(error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._timings.max_backoff)

    async def _full_copy(self) -> None:
        """Copy every versioned item of the source to the target (last writer wins): the
        target may have missed changes the stream no longer holds."""
        self.state = "catching-up"
        copying = functools.partial(self._retrying, working="catching-up")
        started = self._clock()
        batch: list[Action] = []
        copied = 0
        async for item in self._source.scan():
            version = version_of(item)
            if version is None:
                continue
            # Items that came here from a third region keep their mark; ours get one now.
            if origin_of(item) is None:
                item = marked(item, self.region, started)
            key = {name: item[name] for name in ("pk", "sk") if name in item}
            batch.append(Put(key, item, version, started))
            if len(batch) >= 100:
                await copying(functools.partial(self._send, batch))
                copied += len(batch)
                batch = []
        if batch:
            await copying(functools.partial(self._send, batch))
            copied += len(batch)
        await copying(functools.partial(self.target.mark_seeded, self.region))
        self.full_copies += 1
        log.info(
            "replication %s→%s: copied %d items (full copy)",
            self.region,
            self.target.region,
            copied,
        )


class Replicator:
    """One region's replicator: a pipeline per other region, run side by side."""

    def __init__(self, region: str, pipelines: Sequence[TargetReplicator]) -> None:
        self.region = region
        self.pipelines = list(pipelines)

    def status(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "targets": {p.target.region: p.status() for p in self.pipelines},
        }

    async def run(self) -> None:
        """Run every pipeline until cancelled; then give their leases up."""
        tasks = [
            asyncio.create_task(p.run(), name=f"replicate-{self.region}-{p.target.region}")
            for p in self.pipelines
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*(p.release() for p in self.pipelines), return_exceptions=True)
