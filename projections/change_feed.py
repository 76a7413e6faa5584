"""The change feed that keeps the read cache exact: the region's stream publications.

The region's change-stream publisher sends every projection change, as a full snapshot with
its version, to the broker (publishProduct / publishCustomer / publishOrder, marked as the
stream's). Every API instance hears them; this feed applies each one to the instance's
ReadCache: the item's new snapshot, and the lists it belongs to invalidated. Other callers'
publish* (an operator's IAM test message) reach subscribers but never the cache: they do not
say what the table holds.

The cache is live only while the feed listens: subscribed here, and (for a broker that can
tell, the Redis one) confirmed by the broker with no gap since. A gap empties the cache.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from domain.aggregates import CUSTOMER, ORDER, PRODUCT, Aggregate
from projections.read_cache import PRODUCT_PAGES, ReadCache, Tag, orders_of
from subscriptions.ports import STREAM_KEY, Broker, FeedHealth, Message

log = logging.getLogger(__name__)


def _no_lists(message: Message) -> tuple[Tag, ...]:
    return ()


def _product_lists(message: Message) -> tuple[Tag, ...]:
    return (PRODUCT_PAGES,)


def _customer_orders(message: Message) -> tuple[Tag, ...]:
    customer = message.get("customerId")
    return (orders_of(customer),) if isinstance(customer, str) else ()


# Each projected aggregate's channel, and the lists a change of it may alter.
FEEDS: Mapping[str, tuple[Aggregate[Any], Callable[[Message], tuple[Tag, ...]]]] = {
    PRODUCT.publish_mutation: (PRODUCT, _product_lists),
    CUSTOMER.publish_mutation: (CUSTOMER, _no_lists),
    ORDER.publish_mutation: (ORDER, _customer_orders),
}
_CHANNELS = tuple(FEEDS)


def apply_change(cache: ReadCache, channel: str, message: Message) -> None:
    """One stream publication into the cache (anything else is ignored)."""
    feed = FEEDS.get(channel)
    if feed is None or message.get(STREAM_KEY) is not True:
        return
    aggregate, lists = feed
    item_id, version = message.get("id"), message.get("version")
    if not isinstance(item_id, str) or type(version) is not int:
        return
    cache.changed(aggregate.kind, item_id, version, _snapshot(aggregate, message), lists(message))


def _snapshot(aggregate: Aggregate[Any], message: Message) -> Any | None:
    """The message's full snapshot, or None when it carries only some fields (a publication
    masked to what the publish mutation selected): then the item is only invalidated."""
    try:
        snapshot = aggregate.from_plain(message)
    except (KeyError, TypeError, ValueError):
        return None
    if not aggregate.to_plain(snapshot).keys() <= message.keys():
        return None
    return snapshot


class ChangeFeed:
    """Listens to the stream publications for one ReadCache; `liveness` is the cache's."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._generation = itertools.count(1)
        self._listening: int | None = None  # the generation of the live subscriptions
        self._health = broker if isinstance(broker, FeedHealth) else None

    def liveness(self) -> object | None:
        if self._listening is None:
            return None
        if self._health is not None:
            state = self._health.feed_state(_CHANNELS)
            if state is None:
                return None
            return (self._listening, state)
        return self._listening

    async def run(self, cache: ReadCache, *, retry_after: float = 1.0) -> None:
        """Apply every publication to `cache` until cancelled; re-subscribes when dropped."""
        while True:
            pumps = [
                asyncio.create_task(_pump(cache, channel, self._broker.subscribe(channel)))
                for channel in FEEDS
            ]
            try:
                for channel in FEEDS:
                    await self._broker.until_listening(channel)
                self._listening = next(self._generation)
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
                log.warning("the read cache's change feed was dropped; subscribing again")
            finally:
                self._listening = None
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
            await asyncio.sleep(retry_after)


async def _pump(cache: ReadCache, channel: str, listener: AsyncIterator[Message]) -> None:
    """One channel's publications into the cache, until the broker ends the subscription (a
    subscriber too slow to keep up is dropped) or the feed stops."""
    try:
        async for message in listener:
            apply_change(cache, channel, message)
    finally:
        close = getattr(listener, "aclose", None)
        if close is not None:
            await close()
