"""The supervisor over fake children: a dead child fails its check, is restarted and its
state restored; one that cannot be restarted ends the process (give_up)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from hemisphere.roles.supervision import Supervised, Supervisor


class FakeChild:
    name = "fake endpoint"
    where = "port 1"

    def __init__(self, failing_starts: int = 0) -> None:
        self.code: int | None = None
        self.spawns = 0
        self.failing_starts = failing_starts

    @property
    def pid(self) -> int | None:
        return 1000 + self.spawns

    def exit_code(self) -> int | None:
        return self.code

    def spawn(self) -> None:
        self.spawns += 1
        self.code = None

    def wait_until_up(self, timeout: float = 30.0) -> None:
        if self.failing_starts:
            self.failing_starts -= 1
            self.code = 1
            raise RuntimeError("did not start")

    def stop(self, timeout: float = 5.0) -> None:
        self.code = 0


async def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polls a fake's plain attributes
            await asyncio.sleep(0.01)


async def test_a_dead_child_fails_its_check_then_is_restarted_and_restored() -> None:
    child = FakeChild()
    restored = asyncio.Event()
    gate = asyncio.Event()

    async def restore() -> None:
        await gate.wait()  # the check must fail while the restore runs
        restored.set()

    supervised = Supervised(child, "fake", restore)
    supervisor = Supervisor([supervised], give_up=lambda reason: None, interval=0.01)
    [probe] = supervisor.probes()
    async with supervisor.running():
        await probe.check()
        child.code = -9
        await wait_for(lambda: supervised.restarting)
        try:
            await probe.check()
            raise AssertionError("a restarting child passed its check")
        except RuntimeError as down:
            assert "restarting" in str(down)
        gate.set()
        await asyncio.wait_for(restored.wait(), 5)
        await wait_for(lambda: not supervised.restarting)
        await probe.check()
    assert child.spawns == 1


async def test_a_child_that_will_not_start_gives_up_once() -> None:
    child = FakeChild(failing_starts=10)
    reasons: list[str] = []
    supervisor = Supervisor(
        [Supervised(child, "fake")], give_up=reasons.append, interval=0.01, max_restarts=2
    )
    child.code = 1  # dead from the start; one 2 s backoff between the two attempts
    async with supervisor.running():
        await wait_for(lambda: bool(reasons), within=15)
    assert reasons == ["the fake endpoint could not be restarted after 2 attempts"]
    assert child.spawns == 2
