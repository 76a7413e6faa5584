"""The single-consumer bounded queue behind each subscriber and each real-time connection."""

from __future__ import annotations

import asyncio

import pytest

from subscriptions.mailbox import Mailbox


async def test_items_come_out_in_order_and_the_bound_refuses_one_more() -> None:
    mailbox: Mailbox[int] = Mailbox(2)
    mailbox.put_nowait(1)
    mailbox.put_nowait(2)
    with pytest.raises(asyncio.QueueFull):
        mailbox.put_nowait(3)
    assert mailbox.qsize() == 2
    assert [mailbox.get_nowait(), await mailbox.get()] == [1, 2]
    assert mailbox.empty() and mailbox.qsize() == 0
    with pytest.raises(asyncio.QueueEmpty):
        mailbox.get_nowait()


async def test_a_waiting_consumer_wakes_for_the_next_item() -> None:
    mailbox: Mailbox[str] = Mailbox(10)
    waiting = asyncio.create_task(mailbox.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    mailbox.put_nowait("a")
    assert await asyncio.wait_for(waiting, 1) == "a"


async def test_a_cancelled_get_leaves_the_mailbox_usable() -> None:
    mailbox: Mailbox[str] = Mailbox(10)
    waiting = asyncio.create_task(mailbox.get())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    mailbox.put_nowait("b")
    assert await asyncio.wait_for(mailbox.get(), 1) == "b"


async def test_zero_means_no_bound_as_for_asyncio_queues() -> None:
    mailbox: Mailbox[int] = Mailbox(0)
    for n in range(5000):
        mailbox.put_nowait(n)
    assert mailbox.qsize() == 5000


async def test_a_second_concurrent_consumer_is_refused() -> None:
    mailbox: Mailbox[int] = Mailbox(1)
    first = asyncio.create_task(mailbox.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await mailbox.get()
    first.cancel()
