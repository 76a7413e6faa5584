"""The delay line shifts a stream by its delay; it never adds the delay once per item."""

from __future__ import annotations

import asyncio

from regions.delay_proxy import DelayLine


class FakeTime:
    """A clock that only moves when the line sleeps (or the test advances it)."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def test_a_burst_is_delivered_one_delay_after_each_arrival_in_order() -> None:
    time = FakeTime()
    delivered: list[tuple[float, int]] = []

    async def deliver(item: int) -> None:
        delivered.append((time.now, item))

    line: DelayLine[int] = DelayLine(1.0, deliver, clock=time.clock, sleep=time.sleep)
    for item in range(20):  # 20 arrivals, 1 ms apart
        await line.put(item)
        time.now += 0.001
    await line.close()
    await line.run()
    assert [item for _, item in delivered] == list(range(20))
    # Each item 1 s after its own arrival: the last at 1.019 s, not 20 s.
    for (at, item), expected in zip(delivered, range(20), strict=True):
        assert item == expected
        assert abs(at - (1.0 + 0.001 * item)) < 1e-9


async def test_the_close_arrives_after_the_data_before_it() -> None:
    time = FakeTime()
    delivered: list[str] = []

    async def deliver(item: str) -> None:
        delivered.append(item)

    line: DelayLine[str] = DelayLine(0.5, deliver, clock=time.clock, sleep=time.sleep)
    await line.put("a")
    await line.put("b")
    await line.close()
    await line.run()  # returns only at the close
    assert delivered == ["a", "b"]
    assert time.now == 0.5


async def test_a_full_line_makes_the_sender_wait() -> None:
    time = FakeTime()

    async def deliver(item: int) -> None:
        pass

    line: DelayLine[int] = DelayLine(1.0, deliver, capacity=2, clock=time.clock, sleep=time.sleep)
    await line.put(1)
    await line.put(2)
    third = asyncio.create_task(line.put(3))
    await asyncio.sleep(0)
    assert not third.done()
    running = asyncio.create_task(line.run())
    await asyncio.wait_for(third, 1)
    running.cancel()
