"""Delivery to the subscribers of one instance, and the in-process broker built on it.

`LocalFanout` is the last hop of every broker: the in-process one publishes straight into it;
the Redis one feeds it from the instance's single pub/sub connection. Each subscriber has a
bounded queue; a subscriber that falls that far behind is dropped rather than buffering
without bound. Before fanning out, a `VersionGate` drops any stream publication of an item
whose version this instance already delivered, so a subscriber never receives an older
version after a newer one, nor the same change twice, whatever the publisher replays.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from subscriptions.mailbox import Mailbox
from subscriptions.ports import STREAM_KEY, Message

log = logging.getLogger(__name__)

_CLOSED: Message = {}

ChannelHook = Callable[[str], None]


class VersionGate:
    """Remembers, per (channel, item id), the highest `version` the region's stream publisher
    delivered, and refuses a stream publication whose version is not higher.

    Why here, at the receiving end of each instance: the stream publisher sends each item's
    changes in stream order, but after a restart or a lease takeover it replays from its last
    checkpoint, and a holder that lost its lease while paused may still send one stale
    publication. Only the receiving side sees every path a message can take, and since all
    of an instance's subscribers are fed from this one gate, each of them sees an item's
    versions in increasing order, each once (every change of an item raises its version).

    Only stream publications (marked STREAM_KEY by the publish resolver, for the stream
    publisher's own principal) are gated and remembered. Any other IAM caller's publish*
    passes untouched, as AppSync delivers every call of a publish mutation: a forged
    `version: 999` reaches subscribers once but can never silence the real changes after
    it. Messages without an `id` and an integer `version` pass.

    The memory is bounded (least recently changed items are forgotten first): replays are
    seconds to minutes old, so an item forgotten after `max_items` newer changes is not at
    risk of a replay any more.
    """

    def __init__(self, max_items: int = 100_000) -> None:
        self._max_items = max_items
        self._versions: OrderedDict[tuple[str, str], int] = OrderedDict()

    def admits(self, channel: str, message: Message) -> bool:
        item_id, version = message.get("id"), message.get("version")
        if message.get(STREAM_KEY) is not True:
            return True
        if not isinstance(item_id, str) or type(version) is not int:
            return True
        key = (channel, item_id)
        seen = self._versions.get(key)
        if seen is not None and version <= seen:
            return False
        self._versions[key] = version
        self._versions.move_to_end(key)
        if len(self._versions) > self._max_items:
            self._versions.popitem(last=False)
        return True


# Each subscriber's messages: a Mailbox, not an asyncio.Queue (3 KB less per idle subscriber).
Queue = Mailbox[Message]
# What a subscriber is routed by: one field of the message and the value it must have.
Route = tuple[str, str | int | bool]


class _Channel:
    """One channel's subscribers, with an index of those that want only the messages whose
    field `f` equals `v`: with thousands of subscribers, most following one customer or one
    item, a message wakes those that may want it rather than every one of them. The index
    is a pre-selection: each subscriber still matches its full arguments itself."""

    def __init__(self) -> None:
        self.everyone: set[Queue] = set()
        self._unrouted: set[Queue] = set()
        self._routed: dict[str, dict[object, set[Queue]]] = {}
        self._routes: dict[Queue, Route] = {}

    def add(self, queue: Queue, where: Mapping[str, Any] | None) -> None:
        self.everyone.add(queue)
        route = _route(where)
        if route is None:
            self._unrouted.add(queue)
            return
        field_name, value = self._routes[queue] = route
        self._routed.setdefault(field_name, {}).setdefault(value, set()).add(queue)

    def remove(self, queue: Queue) -> None:
        self.everyone.discard(queue)
        self._unrouted.discard(queue)
        route = self._routes.pop(queue, None)
        if route is not None:
            field_name, value = route
            by_value = self._routed[field_name]
            by_value[value].discard(queue)
            if not by_value[value]:
                del by_value[value]
                if not by_value:
                    del self._routed[field_name]

    def targets(self, message: Message) -> list[Queue]:
        targets = list(self._unrouted)
        for field_name, by_value in self._routed.items():
            value = message.get(field_name)
            if isinstance(value, str | int | bool):
                targets.extend(by_value.get(value, ()))
        return targets


def _route(where: Mapping[str, Any] | None) -> Route | None:
    """The first argument given a scalar value: the one to index the subscriber by."""
    for field_name, value in (where or {}).items():
        if isinstance(value, str | int | bool):
            return field_name, value
    return None


class LocalFanout:
    """The subscribers of one instance, by channel.

    `on_first(channel)` runs when a channel gets its first local subscriber and
    `on_last(channel)` when it loses its last: the Redis broker subscribes and unsubscribes
    its connection there (reference counting by the set of subscribers).
    """

    def __init__(
        self,
        queue_size: int = 1000,
        *,
        gate: VersionGate | None = None,
        on_first: ChannelHook | None = None,
        on_last: ChannelHook | None = None,
    ) -> None:
        self._queue_size = queue_size
        self._gate = gate if gate is not None else VersionGate()
        self._on_first = on_first
        self._on_last = on_last
        self._channels: dict[str, _Channel] = {}

    def deliver(self, channel: str, message: Message) -> None:
        """Hand `message` to the local subscribers of `channel` that may want it; never
        blocks. Subscribers share the one `message` object: they must not mutate it."""
        subscribers = self._channels.get(channel)
        if subscribers is None or not self._gate.admits(channel, message):
            return
        for queue in subscribers.targets(message):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                log.warning(
                    "dropping a slow subscriber of %s (%d messages behind)", channel, queue.qsize()
                )
                self._remove(channel, queue)
                queue.get_nowait()
                queue.put_nowait(_CLOSED)

    def listen(self, channel: str, where: Mapping[str, Any] | None = None) -> Listener:
        """Messages of `channel` delivered from this call on (the subscriber is registered
        before it returns, not on its first step); with `where` (field → value, None meaning
        any), at least those whose fields equal the values given, and possibly others."""
        queue: Queue = Mailbox(self._queue_size)
        subscribers = self._channels.setdefault(channel, _Channel())
        subscribers.add(queue, where)
        if len(subscribers.everyone) == 1 and self._on_first is not None:
            self._on_first(channel)
        return Listener(queue, lambda: self._remove(channel, queue))

    def close(self) -> None:
        """End every subscriber's iterator (the broker is shutting down)."""
        for channel, subscribers in list(self._channels.items()):
            for queue in list(subscribers.everyone):
                self._remove(channel, queue)
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(_CLOSED)

    def channels(self) -> frozenset[str]:
        return frozenset(self._channels)

    def subscriber_count(self, channel: str) -> int:
        subscribers = self._channels.get(channel)
        return len(subscribers.everyone) if subscribers is not None else 0

    def _remove(self, channel: str, queue: Queue) -> None:
        subscribers = self._channels.get(channel)
        if subscribers is None or queue not in subscribers.everyone:
            return
        subscribers.remove(queue)
        if not subscribers.everyone:
            del self._channels[channel]
            if self._on_last is not None:
                self._on_last(channel)


class Listener:
    """One subscriber's messages. Registered when made, so nothing published after the
    subscription call is missed (an async generator would register on its first step,
    after the client was told it is subscribed); unregistered when closed or ended."""

    def __init__(self, queue: Queue, unregister: Callable[[], None]) -> None:
        self._queue = queue
        self._unregister: Callable[[], None] | None = unregister

    def __aiter__(self) -> Listener:
        return self

    async def __anext__(self) -> Message:
        if self._unregister is None:
            raise StopAsyncIteration
        try:
            message = await self._queue.get()
        except BaseException:
            await self.aclose()
            raise
        if message is _CLOSED:
            await self.aclose()
            raise StopAsyncIteration
        return message

    async def aclose(self) -> None:
        unregister, self._unregister = self._unregister, None
        if unregister is not None:
            unregister()


class InProcessBroker:
    """One instance, no Redis: a publication reaches this instance's subscribers only."""

    def __init__(self, queue_size: int = 1000, *, gate: VersionGate | None = None) -> None:
        self._fanout = LocalFanout(queue_size, gate=gate)

    async def publish(self, channel: str, message: Message) -> None:
        self._fanout.deliver(channel, message)

    def subscribe(
        self, channel: str, where: Mapping[str, Any] | None = None
    ) -> AsyncIterator[Message]:
        """See LocalFanout.listen for `where`."""
        return self._fanout.listen(channel, where)

    async def until_listening(self, channel: str) -> None:
        """In process, a subscriber hears every publication from its subscribe() call on."""

    def subscriber_count(self, channel: str) -> int:
        return self._fanout.subscriber_count(channel)
