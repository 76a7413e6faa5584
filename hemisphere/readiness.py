"""Readiness: whether this process should get traffic now.

A probe (the orchestrator's, a load balancer's, Route 53's) must be cheap and must not become
load on the backends it checks: the checks run in the background every `interval` seconds and
`/readyz` answers from the last results. A check is a coroutine that returns when its backend
is fine and raises otherwise. A change of state is logged once, in plain words, with the
reason; nothing is logged while the state stays the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass

from hemisphere.background import in_background
from schema.errors import redact_endpoints

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]

OK = "ok"


@dataclass(frozen=True)
class Probe:
    """One check: `name` keys it in /readyz, `description` says what it checks in the log."""

    name: str
    description: str
    check: Check


@dataclass(frozen=True)
class Report:
    ready: bool
    checks: dict[str, str]


class Readiness:
    """The checks of one process and their last results. Before the first refresh (or once
    `draining` is set by a shutdown) the process is not ready."""

    def __init__(self, *, interval: float = 2.0, timeout: float = 2.0) -> None:
        self._interval = interval
        self._timeout = timeout
        self._checks: dict[str, Check] = {}
        self._results: dict[str, str] = {}
        self._descriptions: dict[str, str] = {}
        self._refreshed_at: float | None = None
        self.draining = False

    def watch(self, probes: Iterable[Probe]) -> None:
        for probe in probes:
            self._checks[probe.name] = probe.check
            self._descriptions[probe.name] = probe.description

    def report(self) -> Report:
        checks = dict(self._results)
        if self._refreshed_at is None:
            checks["started"] = "starting"
        if self.draining:
            checks["draining"] = "shutting down"
        return Report(all(result == OK for result in checks.values()), checks)

    async def refresh(self) -> Report:
        names = list(self._checks)
        outcomes = await asyncio.gather(*(self._run(self._checks[name]) for name in names))
        for name, outcome in zip(names, outcomes, strict=True):
            self._record(name, outcome)
        self._refreshed_at = time.monotonic()
        return self.report()

    async def _run(self, check: Check) -> str:
        try:
            async with asyncio.timeout(self._timeout):
                await check()
        except TimeoutError:
            return f"no answer within {self._timeout:g}s"
        except Exception as exc:  # any failure of a check means "not ready", with its reason
            return _plain(exc)
        return OK

    def _record(self, name: str, outcome: str) -> None:
        before = self._results.get(name)
        self._results[name] = outcome
        what = self._descriptions.get(name, name)
        if outcome != OK and (before is None or before == OK):
            log.error("%s: %s; this process reports not ready until it recovers", what, outcome)
        elif outcome == OK and before not in (None, OK):
            log.warning("%s: recovered", what)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Refresh once now (so the first probe is truthful), then in the background."""
        await self.refresh()
        async with in_background(self._loop(), "readiness"):
            yield

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.refresh()


def _plain(error: BaseException) -> str:
    """The reason a check failed, for a probe's body: the error's kind and message, with no
    endpoint in it (the body is unauthenticated)."""
    message = str(error).strip()
    kind = type(error).__name__
    return f"{kind}: {redact_endpoints(message)}" if message else kind
