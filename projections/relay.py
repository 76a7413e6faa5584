"""The outbox relay: moves events from the outbox (PostgreSQL) to the projector.

Delivery is at least once: the outbox marks a batch published only after the projector
returned, and the projector's conditional writes make a replayed batch harmless. So the relay
never has to decide whether a failed batch "partly happened": it just tries again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from domain.backoff import Backoff
from projections.ports import Outbox
from projections.projector import Projector

log = logging.getLogger(__name__)

# Draining and listening again after failures in a row (relays in several processes that
# failed together do not retry in step: domain.backoff).
RETRY_BACKOFF: Final = Backoff(initial=0.2, maximum=30.0)


class OutboxRelay:
    def __init__(
        self,
        outbox: Outbox,
        projector: Projector,
        batch_size: int = 200,
        *,
        poll_interval: float = 5.0,
        backoff: Backoff = RETRY_BACKOFF,
    ) -> None:
        self._outbox = outbox
        self._projector = projector
        self._batch_size = batch_size
        # The safety net for a lost notification (NOTIFY is not delivered while the listener
        # reconnects): the worst extra lag of an event.
        self._poll_interval = poll_interval
        self._backoff = backoff

    async def drain_all(self) -> int:
        """Project every waiting event, batch by batch, until the outbox is empty.
        Returns how many events were handled; raises on the first failing batch."""
        total = 0
        while handled := await self._outbox.drain(self._projector.handle, self._batch_size):
            total += handled
        return total

    async def run(self) -> None:
        """Drain, then sleep until a notification or the safety poll, forever; a failure is
        logged and retried with capped exponential backoff. Stops when cancelled."""
        wake = asyncio.Event()
        listener = asyncio.create_task(self._listen(wake), name="outbox-relay-notifications")
        failures = 0
        try:
            while True:
                # Cleared before draining: a notification that arrives during the drain
                # must cause another drain, not be absorbed by this one.
                wake.clear()
                try:
                    await self.drain_all()
                except Exception as error:
                    failures += 1
                    delay = self._backoff.delay(failures)
                    log.warning(
                        "outbox relay: projecting failed (%d in a row), retrying in %.1fs: %s",
                        failures,
                        delay,
                        error,
                        # The traceback once per outage, not on every retry.
                        exc_info=failures == 1,
                    )
                    # Notifications do not cut the backoff short: hammering a store that is
                    # down would only slow its recovery.
                    await asyncio.sleep(delay)
                    continue
                if failures:
                    log.info("outbox relay: projecting again after %d failures", failures)
                    failures = 0
                await self._sleep_until(wake)
        finally:
            listener.cancel()
            # asyncio.wait, not `await listener`: it neither raises the listener's
            # CancelledError nor swallows a cancellation of run() itself.
            await asyncio.wait([listener])

    async def _sleep_until(self, wake: asyncio.Event) -> None:
        try:
            async with asyncio.timeout(self._poll_interval):
                await wake.wait()
        except TimeoutError:
            pass

    async def _listen(self, wake: asyncio.Event) -> None:
        failures = 0
        while True:
            try:
                async for _ in self._outbox.notifications():
                    failures = 0
                    wake.set()
            except Exception as error:
                failures += 1
                delay = self._backoff.delay(failures)
                log.warning(
                    "outbox relay: notifications failed, polling every %.0fs; "
                    "listening again in %.1fs: %s",
                    self._poll_interval,
                    delay,
                    error,
                )
                await asyncio.sleep(delay)
                continue
            # The listener was closed (shutdown): the safety poll alone keeps the relay going.
            log.info("outbox relay: notifications ended; polling every %.0fs", self._poll_interval)
            return
