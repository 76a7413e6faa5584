"""One stream publisher per region: a lease with a fencing token.

Every API instance runs a LeaseKeeper; at most one holds the lease at a time and publishes. The
lease lives in the projection table (LeaseStore, adapters.dynamodb.leases): taking it is a
conditional write that succeeds only when it is free or expired, and each taking raises a
fencing token, so writes made under an older taking (a holder that paused past its expiry) are
refused where it matters: on the checkpoints (CheckpointStore.save checks the token).

Timeline (defaults: lease 5 s, renewal every 1.5 s):

    holder      renews at t, t+1.5, t+3 ...   (expiresAt = its wall clock + 5 s)
    holder dies at d                          (last renewal r <= d, expiresAt = r + 5)
    standbys    try every 1.5 s; the first after r + 5 wins with token + 1
                -> taken over within 6.5 s of the death, 1.5 s after a graceful release

A holder that cannot renew (the store is unreachable) stops publishing `duration -
renew_every` after its last successful renewal, by its own monotonic clock: before anyone else
can take over, as long as the instances' wall clocks agree within `renew_every`.

Each attempt has `renew_every` to be answered, and the next one starts on schedule: a request
the store leaves unanswered (a client's timeouts and retry can hold one for 8 s) costs one
attempt, not the lease, since at least two more fit before it runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Protocol

from domain.errors import BackendUnavailableError

log = logging.getLogger(__name__)


class LeaseStore(Protocol):
    async def acquire(self, holder: str, *, now: float, duration: float) -> int | None:
        """Take the lease if nobody holds it, it expired before `now` (epoch seconds), or
        `holder` itself holds it; returns the new fencing token (greater than any before), or
        None if another holder has it."""
        ...

    async def renew(self, holder: str, token: int, *, now: float, duration: float) -> bool:
        """Extend the lease to `now + duration` if `holder` still holds it under `token`."""
        ...

    async def release(self, holder: str, token: int) -> None:
        """Let the lease expire now, if `holder` still holds it under `token`."""
        ...


def unique_holder() -> str:
    """A holder name unique to this process, and telling which it is: host:pid:random."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class _Tenure:
    def __init__(self, token: int, valid_until: float) -> None:
        self.token = token
        self.valid_until = valid_until  # monotonic: stop publishing after this
        self.ended = asyncio.Event()


class LeaseKeeper:
    """Takes, renews and gives up the lease for `holder` (unique per process)."""

    def __init__(
        self,
        store: LeaseStore,
        holder: str,
        *,
        duration: float = 5.0,
        renew_every: float = 1.5,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < renew_every < duration / 2:
            # Two renewal attempts must fit in a lease, or one slow write loses it.
            raise ValueError("renew_every must be positive and under half the lease duration")
        self._store = store
        self.holder = holder
        self._duration = duration
        self._renew_every = renew_every
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self._tenure: _Tenure | None = None
        self._held = asyncio.Event()

    @property
    def token(self) -> int | None:
        """The fencing token while this keeper holds the lease, else None."""
        return self._tenure.token if self._tenure is not None else None

    async def run(self) -> None:
        """Try to take the lease, or renew it, every `renew_every` seconds, forever."""
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            try:
                await self.step()
            except Exception as error:
                # The store being down is expected now and then; anything else is logged
                # loudly. Either way: keep trying (step gives the lease up on time).
                log.warning("lease %s: %s", self.holder, error, exc_info=not _is_outage(error))
            await asyncio.sleep(max(0.0, began + self._renew_every - loop.time()))

    async def step(self) -> None:
        """One attempt: take the lease if we have none, renew it otherwise; given up after
        `renew_every` without an answer (BackendUnavailableError)."""
        try:
            async with asyncio.timeout(self._renew_every):
                await self._step()
        except TimeoutError:
            self._expire_if_overdue()
            raise BackendUnavailableError(
                f"the lease store did not answer within {self._renew_every:g} s"
            ) from None
        except Exception:
            self._expire_if_overdue()
            raise

    async def _step(self) -> None:
        tenure = self._tenure
        if tenure is None:
            started = self._monotonic()
            token = await self._store.acquire(
                self.holder, now=self._wall_clock(), duration=self._duration
            )
            if token is not None:
                self._begin(token, started)
            return
        started = self._monotonic()
        renewed = await self._store.renew(
            self.holder, tenure.token, now=self._wall_clock(), duration=self._duration
        )
        if tenure is not self._tenure:
            return  # ended meanwhile (abandoned)
        if renewed:
            tenure.valid_until = started + self._duration - self._renew_every
        else:
            log.warning(
                "lease %s: lost (token %d): another instance took it", self.holder, tenure.token
            )
            self._end(tenure)

    async def acquired(self) -> int:
        """Wait until this keeper holds the lease; returns its fencing token."""
        while True:
            await self._held.wait()
            if self._tenure is not None:
                return self._tenure.token

    async def lost(self, token: int) -> None:
        """Wait until the tenure with `token` is over (lost, abandoned, released), or until it
        is overdue: a renewal that hangs must not keep a publisher going past its lease."""
        tenure = self._tenure
        if tenure is None or tenure.token != token:
            return
        while not tenure.ended.is_set():
            remaining = tenure.valid_until - self._monotonic()
            if remaining <= 0:
                self._expire_if_overdue()
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tenure.ended.wait(), remaining)

    def abandon(self, token: int) -> None:
        """Stop holding (a write was fenced out: someone holds a newer token)."""
        if self._tenure is not None and self._tenure.token == token:
            log.warning("lease %s: fenced out (token %d is not the latest)", self.holder, token)
            self._end(self._tenure)

    async def release(self) -> None:
        """Give the lease up now, so a standby takes over at its next attempt."""
        tenure = self._tenure
        if tenure is None:
            return
        self._end(tenure)
        try:
            await self._store.release(self.holder, tenure.token)
        except Exception as error:
            log.warning("lease %s: not released (%s); it expires by itself", self.holder, error)

    def _begin(self, token: int, started: float) -> None:
        log.info("lease %s: taken with fencing token %d", self.holder, token)
        self._tenure = _Tenure(token, started + self._duration - self._renew_every)
        self._held.set()

    def _end(self, tenure: _Tenure) -> None:
        if self._tenure is tenure:
            self._tenure = None
            self._held.clear()
        tenure.ended.set()

    def _expire_if_overdue(self) -> None:
        tenure = self._tenure
        if tenure is not None and self._monotonic() >= tenure.valid_until:
            log.warning(
                "lease %s: not renewed in time (token %d): stopping before another instance "
                "may take over",
                self.holder,
                tenure.token,
            )
            self._end(tenure)


def _is_outage(error: BaseException) -> bool:
    return isinstance(error, BackendUnavailableError)
