"""Supervision of the children of `serve`: a dead child is noticed, said once in plain words,
fails /readyz, and is restarted on the same port with what it held rebuilt; if it cannot be,
the process ends non-zero so that whoever runs it restarts everything.

Without this, a killed local AWS endpoint left /health answering ok and every read failing
forever, and an accepted write reached queries only after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from hemisphere.background import in_background
from hemisphere.readiness import Probe

log = logging.getLogger(__name__)

Restore = Callable[[], Awaitable[None]]


class Child(Protocol):
    name: str

    @property
    def where(self) -> str: ...

    @property
    def pid(self) -> int | None: ...

    def exit_code(self) -> int | None: ...

    def spawn(self) -> None: ...

    def wait_until_up(self, timeout: float = 30.0) -> None: ...

    def stop(self, timeout: float = 5.0) -> None: ...


class ChildDownError(RuntimeError):
    """A supervised child is not running (it died, or it is being restarted)."""


@dataclass
class Supervised:
    """A child, the name of its readiness check, and what rebuilds its state after a
    restart (None: it holds none)."""

    child: Child
    check: str
    restore: Restore | None = None
    restarting: bool = field(default=False, init=False)

    def describe(self) -> str:
        return f"the {self.child.name} (pid {self.child.pid}, {self.child.where})"

    async def check_alive(self) -> None:
        if self.restarting:
            raise ChildDownError(f"the {self.child.name} is restarting")
        code = self.child.exit_code()
        if code is not None:
            raise ChildDownError(f"the {self.child.name} exited ({_exit_status(code)})")


def _exit_status(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class Supervisor:
    """Polls the children; restarts a dead one up to `max_restarts` times in a row, then
    calls `give_up` (which ends the process non-zero)."""

    def __init__(
        self,
        children: list[Supervised],
        give_up: Callable[[str], None],
        *,
        interval: float = 0.5,
        max_restarts: int = 3,
        start_timeout: float = 30.0,
    ) -> None:
        self._children = children
        self._give_up = give_up
        self._interval = interval
        self._max_restarts = max_restarts
        self._start_timeout = start_timeout

    def probes(self) -> list[Probe]:
        return [Probe(s.check, f"the {s.child.name}", s.check_alive) for s in self._children]

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with in_background(self._watch(), "supervisor"):
            yield

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            for supervised in self._children:
                code = supervised.child.exit_code()
                if code is not None and not await self._recover(supervised, code):
                    return

    async def _recover(self, supervised: Supervised, code: int) -> bool:
        """Whether the child runs again."""
        child = supervised.child
        log.error(
            "%s stopped unexpectedly (%s): restarting it on the same %s%s",
            supervised.describe(),
            _exit_status(code),
            child.where,
            " and rebuilding what it held" if supervised.restore is not None else "",
        )
        supervised.restarting = True
        try:
            for attempt in range(1, self._max_restarts + 1):
                try:
                    # Spawned from the event loop's thread: the parent-death signal follows
                    # the thread that forks, and this one lives as long as the process.
                    child.spawn()
                    await asyncio.to_thread(child.wait_until_up, self._start_timeout)
                    if supervised.restore is not None:
                        await supervised.restore()
                except Exception as error:
                    log.warning("restart %d of the %s failed: %s", attempt, child.name, error)
                    await asyncio.to_thread(child.stop, 2.0)
                    await asyncio.sleep(min(2.0**attempt, 10.0))
                    continue
                log.warning("the %s is back (pid %s)", child.name, child.pid)
                return True
        finally:
            supervised.restarting = False
        self._give_up(
            f"the {child.name} could not be restarted after {self._max_restarts} attempts"
        )
        return False
