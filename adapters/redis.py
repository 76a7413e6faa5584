"""The region's broker on Redis pub/sub (ElastiCache in production).

Every instance holds ONE subscriber connection, subscribed to the channels its local
subscribers listen to (a channel is subscribed when its first local subscriber arrives and
unsubscribed when its last leaves), and fans each message out in process (LocalFanout).
Publishing uses a separate small pool: a connection in subscriber mode cannot publish.

When Redis goes away the subscriber connection is re-established with capped exponential
backoff and every wanted channel is subscribed again. Local subscribers notice nothing but the
gap: pub/sub keeps no history, so what was published meanwhile is not delivered here. Each
gap is logged at WARNING with its start, end, duration and channels. Publishing while Redis is
down raises BrokerUnavailableError (errorType ServiceUnavailable): the stream publisher
retries it, so a change made during an outage is delivered once Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from domain.errors import BackendUnavailableError
from subscriptions.inprocess import LocalFanout, VersionGate
from subscriptions.ports import Message

log = logging.getLogger(__name__)

# What a dead or unreachable server raises: redis-py's errors, and the OS's for a reset socket.
_CONNECTION_ERRORS = (RedisError, OSError)


class BrokerUnavailableError(BackendUnavailableError):
    """Redis cannot take a publication now; nothing was delivered. Retry later."""


def redacted(url: str) -> str:
    """`url` without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


class _Gap:
    """An interruption of the subscriber connection, from the failure that revealed it until
    every wanted channel is subscribed again."""

    def __init__(self, channels: frozenset[str]) -> None:
        self.started = datetime.now(UTC)
        self.channels = set(channels)

    def report(self) -> None:
        ended = datetime.now(UTC)
        log.warning(
            "Redis pub/sub gap from %s to %s (%.3f s) on channels %s: messages published "
            "meanwhile were not delivered to this instance's subscribers",
            self.started.isoformat(timespec="milliseconds"),
            ended.isoformat(timespec="milliseconds"),
            (ended - self.started).total_seconds(),
            sorted(self.channels) or "(none)",
        )


class RedisBroker:
    """subscriptions.ports.Broker over Redis pub/sub. Channel `c` is Redis channel
    `<prefix>c`: give each region (deployment) sharing a Redis server its own prefix."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "hemisphere:",
        queue_size: int = 1000,
        gate: VersionGate | None = None,
        connect_timeout: float = 1.0,
        publish_timeout: float = 2.0,
        min_backoff: float = 0.05,
        max_backoff: float = 5.0,
        liveness_interval: float = 5.0,
    ) -> None:
        self._url = url
        self._prefix = prefix
        self._fanout = LocalFanout(
            queue_size, gate=gate, on_first=self._channels_changed, on_last=self._channels_changed
        )
        # One retry: a pooled connection that died with a restarted server is replaced once,
        # so the first publication after a restart does not fail for nothing.
        self._publisher = Redis.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=publish_timeout,
            retry=Retry(NoBackoff(), 1),
        )
        # No retries and no read timeout on the subscriber side: our own loop reconnects (so it
        # can resubscribe and report the gap), and silence is normal on a quiet channel; the
        # liveness check below tells silence from a dead peer.
        self._subscriber = Redis.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=None,
            retry=Retry(NoBackoff(), 0),
        )
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._liveness_interval = liveness_interval

        self._lock = asyncio.Lock()  # serializes (re)connection and (un)subscribe commands
        self._pubsub: PubSub | None = None
        self._requested: set[str] = set()  # SUBSCRIBE sent on the current connection
        self._confirmed: set[str] = set()  # ... and acknowledged by Redis
        self._gap: _Gap | None = None
        self._gaps = 0  # interruptions so far (feed_state)
        self._changed = asyncio.Event()
        self._confirmation = asyncio.Event()  # set on every confirmed subscription
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    # --- Broker ------------------------------------------------------------------------------

    async def publish(self, channel: str, message: Message) -> None:
        if self._closed:
            raise RuntimeError("the broker is closed")
        try:
            await self._publisher.publish(self._prefix + channel, orjson.dumps(message))
        except _CONNECTION_ERRORS as error:
            raise BrokerUnavailableError(
                f"the broker at {redacted(self._url)} is unavailable ({error}); retry later"
            ) from error

    def subscribe(
        self, channel: str, where: Mapping[str, Any] | None = None
    ) -> AsyncIterator[Message]:
        """Messages published on `channel` from the moment Redis confirms the subscription
        (see `until_listening`) until the iterator is closed; `where` as LocalFanout.listen."""
        if self._closed:
            raise RuntimeError("the broker is closed")
        self._start()
        return self._fanout.listen(channel, where)

    # --- observability -----------------------------------------------------------------------

    def listening(self, channel: str) -> bool:
        """Whether Redis has confirmed this instance's subscription to `channel`."""
        return channel in self._confirmed

    def feed_state(self, channels: tuple[str, ...]) -> int | None:
        """subscriptions.ports.FeedHealth: None during a gap or before Redis confirmed every
        one of `channels`; else the count of gaps so far."""
        if self._gap is not None or not self._confirmed.issuperset(channels):
            return None
        return self._gaps

    async def until_listening(self, channel: str) -> None:
        """Wait until `listening(channel)`: from then on, a publication on `channel` reaches
        this instance's subscribers (e.g. before acknowledging a client's subscription)."""
        while channel not in self._confirmed:
            self._confirmation.clear()
            await self._confirmation.wait()

    def subscriber_count(self, channel: str) -> int:
        """Local subscribers of `channel` (whether or not Redis has confirmed it yet)."""
        return self._fanout.subscriber_count(channel)

    async def aclose(self) -> None:
        """End every local subscription, stop listening, close the connections."""
        if self._closed:
            return
        self._closed = True
        self._fanout.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._drop_connection()
        await self._publisher.aclose()
        await self._subscriber.aclose()

    # --- the subscriber connection -----------------------------------------------------------

    def _start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._listen_forever(), name="redis-broker-listener"),
                asyncio.create_task(self._follow_channels(), name="redis-broker-channels"),
            ]

    def _channels_changed(self, channel: str) -> None:
        self._changed.set()

    async def _follow_channels(self) -> None:
        """SUBSCRIBE / UNSUBSCRIBE as local subscribers come and go (coalesced)."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            async with self._lock:
                pubsub = self._pubsub
                if pubsub is None:
                    continue  # the listener subscribes to everything wanted when it connects
                wanted = self._fanout.channels()
                added, removed = wanted - self._requested, self._requested - wanted
                try:
                    if added:
                        await pubsub.subscribe(*(self._prefix + c for c in added))
                        self._requested |= added
                    if removed:
                        await pubsub.unsubscribe(*(self._prefix + c for c in removed))
                        self._requested -= removed
                        self._confirmed -= removed
                except _CONNECTION_ERRORS:
                    # The listener's read fails on the same connection and resubscribes.
                    pass

    async def _listen_forever(self) -> None:
        backoff = self._min_backoff
        while True:
            try:
                pubsub = await self._connect()
            except _CONNECTION_ERRORS as error:
                self._lost(error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            backoff = self._min_backoff
            try:
                await self._read(pubsub)
            except Exception as error:
                # Connection errors above all; anything else is a bug, but a listener that
                # died would leave every subscriber of this instance waiting forever.
                if not isinstance(error, _CONNECTION_ERRORS):
                    log.exception("the Redis listener failed; reconnecting")
                self._lost(error)
                await self._drop_connection()

    async def _connect(self) -> PubSub:
        async with self._lock:
            pubsub = self._subscriber.pubsub()
            try:
                await pubsub.connect()  # type: ignore[no-untyped-call]  # unannotated upstream
                wanted = self._fanout.channels()
                if wanted:
                    await pubsub.subscribe(*(self._prefix + c for c in wanted))
            except BaseException:
                await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8
                raise
            self._pubsub, self._requested, self._confirmed = pubsub, set(wanted), set()
            self._end_gap_if_resubscribed()
            return pubsub

    async def _read(self, pubsub: PubSub) -> None:
        loop = asyncio.get_running_loop()
        last_heard = loop.time()
        while True:
            message = await pubsub.get_message(timeout=self._liveness_interval)
            now = loop.time()
            if message is None:
                # Quiet: ask for a PONG; a peer that stays silent three intervals is dead
                # (a half-open TCP connection raises nothing by itself).
                if now - last_heard > 3 * self._liveness_interval:
                    raise ConnectionError("Redis did not answer PING")
                await pubsub.ping()
                continue
            last_heard = now
            self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "message":
            channel = self._channel_of(message["channel"])
            try:
                payload = orjson.loads(message["data"])
            except orjson.JSONDecodeError:
                log.warning("ignoring a message on %s that is not JSON", channel)
                return
            if isinstance(payload, dict):
                self._fanout.deliver(channel, payload)
        elif kind == "subscribe":
            self._confirmed.add(self._channel_of(message["channel"]))
            self._confirmation.set()
            self._end_gap_if_resubscribed()
        elif kind == "unsubscribe":
            self._confirmed.discard(self._channel_of(message["channel"]))

    def _channel_of(self, raw: bytes | str) -> str:
        name = raw.decode() if isinstance(raw, bytes) else raw
        return name.removeprefix(self._prefix)

    def _lost(self, error: BaseException) -> None:
        wanted = self._fanout.channels()
        if self._gap is None:
            self._gap = _Gap(wanted)
            self._gaps += 1
            log.warning(
                "Redis pub/sub connection to %s lost (%s); reconnecting with backoff",
                redacted(self._url),
                error or type(error).__name__,
            )
        else:
            self._gap.channels |= wanted

    def _end_gap_if_resubscribed(self) -> None:
        if self._gap is not None and self._requested <= self._confirmed:
            self._gap.channels |= self._requested
            self._gap.report()
            self._gap = None

    async def _drop_connection(self) -> None:
        async with self._lock:
            pubsub, self._pubsub = self._pubsub, None
            self._requested, self._confirmed = set(), set()
        if pubsub is not None:
            with contextlib.suppress(*_CONNECTION_ERRORS):
                await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8
