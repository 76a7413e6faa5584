"""The change-stream publisher: the region's table stream → the contract's publish* mutations.

It does what the stream-handler Lambda does beside a real AppSync API: every change of an
aggregate in the region's projection table becomes its publish mutation (domain.aggregates),
sent to the region's API through a PublicationSink (subscriptions.ports; adapters.appsync
POSTs it to /graphql signed with SigV4, with the documents of schema.publish_documents),
whose `@aws_subscribe` triggers put it on the region's broker.

It runs inside every API instance; the LeaseKeeper lets one of them (per region) publish:

    lease held ─▶ load checkpoints ─▶ for each ready shard (parents first, in parallel):
        read changes ─▶ publish each entity's snapshot, one after another (retrying while
        the API or the broker is down) ─▶ checkpoint, fenced by the lease's token
    lease lost / fenced out / overdue ─▶ stop publishing at once, wait to hold it again

Guarantees: no change made after the publisher first started is skipped (a checkpoint only
ever covers what was published; a new holder resumes from it); nothing older is published:
a stream's publication start is claimed once (kept in the checkpoint store, so a crash
before the first checkpoint changes nothing), and changes the stream recorded before it (the
projections rebuilt at start, say) predate every subscriber: every API instance settles the
start before it listens (settle_publication_start), so replaying them would tell subscribers
of changes nobody made. A change may be published twice (after a crash or a
takeover); each instance's LocalFanout drops a stream publication whose version it already
delivered, so a subscriber gets each change once and never an older version after a newer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import propagate

from domain.aggregates import Snapshot
from domain.errors import BackendUnavailableError
from subscriptions.checkpoints import Change, ChangeStream, CheckpointStore, StreamShard
from subscriptions.checkpoints import ready_shards as _ready_shards
from subscriptions.lease import LeaseKeeper
from subscriptions.ports import (
    PublicationRejectedError,
    PublicationSink,
    PublicationUnreachableError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


def lease_name(region: str) -> str:
    """The lease and checkpoints of `region`'s publisher (keys in adapters.dynamodb.leases)."""
    return f"stream-publisher#{region}"


# --- the publication start ----------------------------------------------------------------


async def publication_start(
    stream: str,
    checkpoints: CheckpointStore,
    *,
    first: bool | None = None,
    clock: Callable[[], float] = time.time,
) -> float:
    """From when `stream`'s changes are published: the start claimed by whoever came first,
    else the next whole second, claimed now; 0 (everything) for a stream published before
    publication starts were kept (not `first`: it has checkpoints and no start; None: look).

    The next whole second, not this one: DynamoDB Streams give a record's creation time in
    whole seconds, so a start within a second cannot tell the changes made before it (the
    projections rebuilt at start) from those made after it in the same second. Flooring it
    published the rebuild's last second to the first subscribers."""
    starts_at = await checkpoints.publication_start(stream)
    if starts_at is not None:
        return starts_at
    if first is None:
        first = not await checkpoints.load(stream)
    if not first:
        return 0.0
    starts_at = await checkpoints.claim_publication_start(stream, math.ceil(clock()))
    log.info("stream publisher: publishing the changes made from %s on", starts_at)
    return starts_at


async def settle_publication_start(
    stream: str | None,
    checkpoints: CheckpointStore,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> float | None:
    """What an API instance does before it listens: claim the region's publication start of
    `stream` (the table's current one) if nobody has, and return once it has passed. Every
    change a subscriber of this instance can see is then made at or after the start, and
    published; nothing made before it (a rebuild, a copy, the demo data) ever is. At most a
    second's wait, at a stream's first start only."""
    if stream is None:
        return None
    starts_at = await publication_start(stream, checkpoints, clock=clock)
    wait = starts_at - clock()
    if wait > 0:
        await sleep(wait)
    return starts_at


# --- the publisher ----------------------------------------------------------------------------


@contextlib.contextmanager
def _continuing(change: Change) -> Iterator[None]:
    """Within the trace of the work that made `change` (the checkout whose saga step wrote
    it), when its item carries one (adapters.dynamodb.stream's changes do; others need not)."""
    carrier = getattr(change, "trace_context", None)
    if not carrier:
        yield
        return
    token = otel_context.attach(propagate.extract(dict(carrier)))
    try:
        yield
    finally:
        otel_context.detach(token)


class _FencedOutError(Exception):
    """A checkpoint write was refused: another instance holds a newer lease."""


class _StoppingError(Exception):
    """stop() was called while a publication was being retried."""


@dataclass
class _ShardProgress:
    shard_id: str
    saved: str | None  # the checkpoint in the table
    position: str | None  # the last change published (or skipped)
    saved_at: float = field(default_factory=time.monotonic)
    unsaved_publications: bool = False


@dataclass(frozen=True)
class PublisherTimings:
    # Between reads of a shard that had nothing new (DynamoDB allows 5 reads/s per shard,
    # shared by every reader; Lambda's poller reads 4 times a second).
    poll_interval: float = 0.25
    # A checkpoint after publishing at most this often: a crash republishes at most this
    # much (harmlessly), and checkpoints cost a transaction each.
    checkpoint_interval: float = 1.0
    # When only control items went by (our own lease renewals and checkpoints are stream
    # records too), checkpoint rarely: each checkpoint makes one more record.
    idle_checkpoint_interval: float = 60.0
    # How often to look for new shards when none ended meanwhile.
    relist_interval: float = 10.0
    min_backoff: float = 0.1
    max_backoff: float = 5.0
    # stop() waits this long for the publication in hand and the last checkpoint.
    stop_grace: float = 10.0
    # For this long after the publisher is made, an API that accepts no connection and has
    # not answered yet is taken to be starting (logged at INFO); after it, an outage.
    api_start_grace: float = 30.0


class StreamPublisher:
    def __init__(
        self,
        stream: ChangeStream,
        checkpoints: CheckpointStore,
        lease: LeaseKeeper,
        sink: PublicationSink,
        timings: PublisherTimings | None = None,
        *,
        lag: Callable[[float], None] | None = None,
    ) -> None:
        """`lag` is told, for each change published, how long ago it was made (seconds)."""
        self._lag = lag
        self._stream = stream
        self._checkpoints = checkpoints
        self._lease = lease
        self._sink = sink
        self._timings = timings or PublisherTimings()
        self._stopping = asyncio.Event()
        # Until the API takes a first publication (within the start grace), an API that
        # accepts no connection is one still starting, not an incident.
        self._api_answered = False
        self._made_at = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    @property
    def is_leader(self) -> bool:
        """Whether this instance holds the region's lease (and so publishes)."""
        return self._lease.token is not None

    @property
    def holder(self) -> str:
        return self._lease.holder

    # --- entry points ----------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Run in the background (see run) until stop(). Cancelling the task is a crash."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="stream-publisher")
        return self._task

    async def stop(self) -> None:
        """Finish the publication in hand, checkpoint, release the lease (a standby takes
        over at its next attempt), and return."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), self._timings.stop_grace)
        except TimeoutError:
            log.warning(
                "the stream publisher did not stop within %.0f s; cancelling it",
                self._timings.stop_grace,
            )
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        """Keep the lease keeper going; publish while holding the lease; return after
        stop(). Cancelling run() is a crash: the lease is left to expire."""
        keeper = asyncio.create_task(self._lease.run(), name="stream-publisher-lease")
        try:
            while not self._stopping.is_set():
                token = await self._until_stopping(self._lease.acquired())
                if token is None:
                    break
                await self._hold(token)
            await self._lease.release()
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    # --- one tenure ------------------------------------------------------------------------

    async def _hold(self, token: int) -> None:
        log.info("stream publisher %s: publishing (fencing token %d)", self.holder, token)
        consume = asyncio.create_task(self._consume(token), name="stream-publisher-consume")
        lost = asyncio.create_task(self._lease.lost(token), name="stream-publisher-lost")
        try:
            await asyncio.wait({consume, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not consume.done():
                # The lease is gone: stop at once, mid-publication if need be (whatever
                # follows is the new holder's, from the last checkpoint).
                consume.cancel()
            lost.cancel()
            await asyncio.gather(consume, lost, return_exceptions=True)
        log.info("stream publisher %s: not publishing any more (token %d)", self.holder, token)

    async def _consume(self, token: int) -> None:
        """Publish until stopping or fenced out, starting over after any failure."""
        backoff = self._timings.min_backoff
        while not self._stopping.is_set():
            try:
                await self._consume_stream(token)
                return
            except _FencedOutError:
                self._lease.abandon(token)
                return
            except Exception as error:
                log.warning(
                    "stream publisher: %s; starting over in %.1f s",
                    error,
                    backoff,
                    exc_info=not isinstance(error, BackendUnavailableError),
                )
                await self._pause(backoff)
                backoff = min(backoff * 2, self._timings.max_backoff)

    async def _consume_stream(self, token: int) -> None:
        stream = await self._stream.latest_stream()
        if stream is None:
            log.warning("the projection table has no stream: nothing to publish")
            await self._pause(self._timings.relist_interval)
            return
        stored = await self._checkpoints.load(stream)
        starts_at = await self._publication_start(stream, first=not stored)
        finished = {shard_id for shard_id, cp in stored.items() if cp.finished}
        resume = {shard_id: cp.sequence_number for shard_id, cp in stored.items()}
        known = set(resume)
        reading: dict[asyncio.Task[None], str] = {}
        try:
            while not self._stopping.is_set():
                shards = await self._stream.shards(stream)
                await self._forget_gone(stream, shards, known, token)
                busy = set(reading.values())
                for shard in _ready_shards(shards, finished, busy):
                    task = asyncio.create_task(
                        self._publish_shard(
                            stream, shard, resume.get(shard.shard_id), token, starts_at
                        )
                    )
                    reading[task] = shard.shard_id
                done = await self._next_done(set(reading))
                for task in done:
                    shard_id = reading.pop(task)
                    task.result()  # a failed shard starts everything over (see _consume)
                    if not self._stopping.is_set():
                        finished.add(shard_id)
        finally:
            for task in reading:
                task.cancel()
            # Shards finish their publication in hand and checkpoint when stopping.
            await asyncio.gather(*reading, return_exceptions=True)

    async def _publication_start(self, stream: str, *, first: bool) -> float:
        """From when this stream's changes are published (see publication_start); claimed
        here for a stream that changed after the API instances settled theirs."""
        return await publication_start(stream, self._checkpoints, first=first)

    async def _next_done(self, tasks: set[asyncio.Task[None]]) -> set[asyncio.Task[None]]:
        stopping: asyncio.Task[Any] = asyncio.create_task(self._stopping.wait())
        try:
            done, _ = await asyncio.wait(
                {*tasks, stopping},
                timeout=self._timings.relist_interval,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stopping.cancel()
        if stopping in done:
            # Let every shard checkpoint what it published, then report nothing done.
            await asyncio.gather(*tasks, return_exceptions=True)
            return set()
        return {task for task in tasks if task in done}

    async def _forget_gone(
        self, stream: str, shards: Sequence[StreamShard], known: set[str], token: int
    ) -> None:
        """Delete the checkpoints of shards the stream no longer lists (trimmed)."""
        gone = known - {shard.shard_id for shard in shards}
        if gone and not await self._checkpoints.forget(
            stream, gone, holder=self.holder, token=token
        ):
            raise _FencedOutError()
        known -= gone

    # --- one shard -------------------------------------------------------------------------

    async def _publish_shard(
        self, stream: str, shard: StreamShard, after: str | None, token: int, starts_at: float
    ) -> None:
        progress = _ShardProgress(shard.shard_id, saved=after, position=after)
        reader = await self._stream.open_shard(stream, shard.shard_id, after)
        timings = self._timings
        try:
            while not self._stopping.is_set():
                changes, ended = await reader.read()
                for change in changes:
                    made_at = change.created_at
                    before_start = made_at is not None and made_at < starts_at
                    if change.snapshot is not None and not before_start:
                        with _continuing(change):
                            await self._publish(change.snapshot)
                        progress.unsaved_publications = True
                        if self._lag is not None and made_at is not None:
                            self._lag(max(0.0, time.time() - made_at))
                    progress.position = change.sequence_number
                if ended:
                    await self._save(stream, progress, token, finished=True)
                    return
                since = time.monotonic() - progress.saved_at
                if progress.position != progress.saved and (
                    (progress.unsaved_publications and since >= timings.checkpoint_interval)
                    or since >= timings.idle_checkpoint_interval
                ):
                    await self._save(stream, progress, token, finished=False)
                if not changes:
                    await self._pause(timings.poll_interval)
        except _StoppingError:
            pass
        if progress.position != progress.saved:
            await self._save(stream, progress, token, finished=False)

    async def _publish(self, snapshot: Snapshot) -> None:
        delay = self._timings.min_backoff
        while True:
            try:
                await self._sink.publish(snapshot)
                self._api_answered = True
                return
            except PublicationUnreachableError as error:
                # `serve` and the API roles start the publisher before their server listens.
                starting = not self._api_answered and (
                    time.monotonic() - self._made_at < self._timings.api_start_grace
                )
                log.log(
                    logging.INFO if starting else logging.WARNING,
                    "publication of %s v%d: the API does not accept connections%s (%s); "
                    "retrying in %.1f s",
                    snapshot.id,
                    snapshot.version,
                    " yet" if starting else "",
                    error,
                    delay,
                )
            except PublicationRejectedError as error:
                # A publication the API refuses as invalid would block its shard forever;
                # it is logged whole so that it can be replayed by hand once fixed.
                log.error("skipping a publication the API rejected: %s; %r", error, snapshot)
                return
            except Exception as error:
                log.warning(
                    "publication of %s v%d failed (%s); retrying in %.1f s",
                    snapshot.id,
                    snapshot.version,
                    error,
                    delay,
                )
            if self._stopping.is_set():
                raise _StoppingError()
            await self._pause(delay)
            delay = min(delay * 2, self._timings.max_backoff)

    async def _save(
        self, stream: str, progress: _ShardProgress, token: int, *, finished: bool
    ) -> None:
        saved = await self._checkpoints.save(
            stream,
            progress.shard_id,
            progress.position,
            finished=finished,
            holder=self.holder,
            token=token,
        )
        if not saved:
            raise _FencedOutError()
        progress.saved, progress.saved_at = progress.position, time.monotonic()
        progress.unsaved_publications = False

    # --- waiting ---------------------------------------------------------------------------

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake up when stop() is called."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _until_stopping(self, awaitable: Awaitable[T]) -> T | None:
        work = asyncio.ensure_future(awaitable)
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not work.done():
                work.cancel()
        return work.result() if work.done() and not work.cancelled() else None
