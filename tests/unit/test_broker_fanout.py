"""The local fan-out under every broker: bounded queues, reference-counted channels, and the
version gate that keeps each item's versions in order for every subscriber."""

from __future__ import annotations

import asyncio

from subscriptions.inprocess import InProcessBroker, LocalFanout, VersionGate
from subscriptions.ports import STREAM_KEY
from tests.support.fanout_fakes import Collector


async def test_every_subscriber_of_a_channel_receives_and_no_other() -> None:
    broker = InProcessBroker()
    first = await Collector.start(broker.subscribe("publishProduct"))
    second = await Collector.start(broker.subscribe("publishProduct"))
    other = await Collector.start(broker.subscribe("publishOrder"))
    await broker.publish("publishProduct", {"id": "p-1", "version": 1})
    await asyncio.sleep(0)
    assert first.received == second.received == [{"id": "p-1", "version": 1}]
    assert other.received == []
    for collector in (first, second, other):
        await collector.stop()


async def test_a_slow_subscriber_is_dropped_and_the_others_keep_receiving() -> None:
    broker = InProcessBroker(queue_size=3)
    slow_iterator = broker.subscribe("c")
    slow_first = asyncio.create_task(anext(slow_iterator))  # registers, then never reads
    await asyncio.sleep(0)
    fast = await Collector.start(broker.subscribe("c"))
    for n in range(1, 6):
        await broker.publish("c", {"n": n})
        await asyncio.sleep(0)
    assert [m["n"] for m in fast.received] == [1, 2, 3, 4, 5]
    assert (await slow_first) == {"n": 1}
    # The slow one got what fitted in its queue, then its iterator ended.
    rest = [m async for m in slow_iterator]
    assert len(rest) < 4
    assert broker.subscriber_count("c") == 1
    await fast.stop()


async def test_a_channel_is_announced_with_its_first_subscriber_and_retired_with_its_last() -> None:
    events: list[tuple[str, str]] = []
    fanout = LocalFanout(
        on_first=lambda c: events.append(("first", c)),
        on_last=lambda c: events.append(("last", c)),
    )
    a = await Collector.start(fanout.listen("c"))
    b = await Collector.start(fanout.listen("c"))
    assert events == [("first", "c")]
    await a.stop()
    assert events == [("first", "c")]
    await b.stop()
    assert events == [("first", "c"), ("last", "c")]
    assert fanout.channels() == frozenset()


async def test_close_ends_every_subscription() -> None:
    fanout = LocalFanout()
    collector = await Collector.start(fanout.listen("c"))
    fanout.close()
    await asyncio.wait_for(collector.task, 1)
    assert collector.received == []


def stream(message: dict[str, object]) -> dict[str, object]:
    """`message` as the region's stream publisher's publish* call puts it on the broker."""
    return {**message, STREAM_KEY: True}


async def test_a_stream_replay_of_an_older_or_the_same_version_is_not_delivered() -> None:
    broker = InProcessBroker()
    collector = await Collector.start(broker.subscribe("publishProduct"))
    for version in (1, 3, 2, 3, 4):
        await broker.publish("publishProduct", stream({"id": "p-1", "version": version}))
    await broker.publish("publishProduct", stream({"id": "p-2", "version": 1}))
    await asyncio.sleep(0)
    # The 2 after the 3 is not delivered, nor the replayed 3: each change once, in order.
    assert [(m["id"], m["version"]) for m in collector.received] == [
        ("p-1", 1),
        ("p-1", 3),
        ("p-1", 4),
        ("p-2", 1),
    ]
    await collector.stop()


async def test_another_callers_publication_never_silences_the_streams() -> None:
    """A publishProduct with version 999 by an IAM caller reaches subscribers (AppSync
    delivers every publish call) but the real changes after it still do."""
    broker = InProcessBroker()
    collector = await Collector.start(broker.subscribe("publishProduct"))
    await broker.publish("publishProduct", stream({"id": "p-1", "version": 4}))
    await broker.publish("publishProduct", {"id": "p-1", "version": 999, "name": "forged"})
    await broker.publish("publishProduct", stream({"id": "p-1", "version": 5}))
    await broker.publish("publishProduct", {"id": "p-1", "version": 999, "name": "forged"})
    await broker.publish("publishProduct", stream({"id": "p-1", "version": 6}))
    await asyncio.sleep(0)
    assert [m["version"] for m in collector.received] == [4, 999, 5, 999, 6]
    await collector.stop()


def test_the_gate_is_per_channel_and_lets_unversioned_messages_through() -> None:
    gate = VersionGate()
    assert gate.admits("publishOrder", stream({"id": "x", "version": 2}))
    assert gate.admits("publishProduct", stream({"id": "x", "version": 1}))
    assert not gate.admits("publishOrder", stream({"id": "x", "version": 2}))
    assert not gate.admits("publishOrder", stream({"id": "x", "version": 1}))
    assert gate.admits("publishOrder", stream({"hello": "world"}))
    assert gate.admits("publishOrder", stream({"id": "y", "version": "7"}))  # not an int
    assert gate.admits("publishOrder", {"id": "x", "version": 1})  # not the stream's


def test_the_gate_forgets_the_least_recently_changed_items_first() -> None:
    gate = VersionGate(max_items=2)
    assert gate.admits("c", stream({"id": "a", "version": 5}))
    assert gate.admits("c", stream({"id": "b", "version": 5}))
    assert gate.admits("c", stream({"id": "a", "version": 6}))  # a is now the most recent
    assert gate.admits("c", stream({"id": "c", "version": 1}))  # evicts b
    assert not gate.admits("c", stream({"id": "a", "version": 5}))
    assert gate.admits("c", stream({"id": "b", "version": 1}))  # forgotten: this old passes


async def test_a_routed_subscriber_is_woken_only_for_the_values_it_follows() -> None:
    broker = InProcessBroker()
    follows_c1 = await Collector.start(
        broker.subscribe("publishOrder", where={"id": None, "customerId": "c-1"})
    )
    follows_all = await Collector.start(broker.subscribe("publishOrder", where={"id": None}))
    unhashable = await Collector.start(broker.subscribe("publishOrder", where={"lines": [1]}))
    for n, customer in enumerate(("c-1", "c-2", "c-1")):
        await broker.publish("publishOrder", {"id": f"o-{n}", "version": 1, "customerId": customer})
    await asyncio.sleep(0)
    assert [m["id"] for m in follows_c1.received] == ["o-0", "o-2"]
    assert [m["id"] for m in follows_all.received] == ["o-0", "o-1", "o-2"]
    assert [m["id"] for m in unhashable.received] == ["o-0", "o-1", "o-2"]
    for collector in (follows_c1, follows_all, unhashable):
        await collector.stop()
    assert broker.subscriber_count("publishOrder") == 0


async def test_routed_and_unrouted_subscribers_of_one_channel_come_and_go_independently() -> None:
    fanout = LocalFanout()
    a = await Collector.start(fanout.listen("c", where={"customerId": "c-1"}))
    b = await Collector.start(fanout.listen("c", where={"customerId": "c-1"}))
    await a.stop()
    fanout.deliver("c", {"id": "o-1", "version": 1, "customerId": "c-1"})
    await asyncio.sleep(0)
    assert [m["id"] for m in b.received] == ["o-1"]
    await b.stop()
    assert fanout.channels() == frozenset()
