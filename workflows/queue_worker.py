"""The one worker loop: takes messages from a queue (workflows.ports.TaskQueue), hands each
body to a handler, deletes the message once the handler is done with it, and backs off while
the queue, or a backend the handler needs, is down. The sagas' task worker (workflows.worker)
and the profile update worker (workflows.profile_updates) are this loop, each with its handler
and its intake.

Delivery is at least once: a message is deleted only after its handler answered DONE. One it
left, whose handler crashed, or whose worker stopped comes back after the queue's visibility
timeout, to this worker or another; so every handler is idempotent.

Intake. Up to `concurrency` messages are handled at once, and at most `read_ahead` more are
held, received but not started. The next receive runs while handlers do, as soon as at least
`min_receive` messages fit (1: a slot that frees is filled at once, and one request still
fetches up to ten when ten fit). A held message waits only for the handling of those before
it, well within the visibility timeout. From the read-ahead, the messages `runs_first` picks
go before the others, each group in the order received.

Deletions run beside the handlers, not in their slots: a deletion that the queue holds back
to send with others (adapters.sqs coalesces them) keeps no message from starting.

Pace. A round is the time from one receive to the next. After a round that met an outage
(the receive failed, or a handler answered BACK_OFF), the next receive waits
`backoff.delay(n)`, n counting such rounds in a row; a round without one resets n. Messages
already held are handled meanwhile. Receiving at once would only fail again, or take messages
the handler cannot handle yet, each delivery counting towards the dead-letter queue.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final

from domain.backoff import Backoff
from workflows.ports import QueuedTask, TaskQueue

log = logging.getLogger(__name__)

# SQS hands out at most 10 messages per receive.
MAX_BATCH: Final = 10
# Receiving again after rounds with an outage (domain.backoff).
RECEIVE_BACKOFF: Final = Backoff(initial=0.5, maximum=30.0)


class Outcome(enum.Enum):
    """What a handler did with a message."""

    DONE = "done"  # handled, or it never can be: the message is deleted
    LEFT = "left"  # not handled now: it comes back after the visibility timeout
    BACK_OFF = "back off"  # LEFT because a backend is down: the next receive waits


# A message's body -> what was done with it. What it raises is a crash: the message is left.
Handler = Callable[[str], Awaitable[Outcome]]


class QueueWorker:
    def __init__(
        self,
        queue: TaskQueue,
        handle: Handler,
        *,
        name: str,
        concurrency: int = 8,
        read_ahead: int | None = None,
        min_receive: int = 1,
        runs_first: Callable[[str], bool] | None = None,
        backoff: Backoff = RECEIVE_BACKOFF,
    ) -> None:
        """`read_ahead` defaults to `concurrency`; `runs_first` to none (the order received).
        `name` starts the worker's log lines."""
        read_ahead = concurrency if read_ahead is None else read_ahead
        if concurrency < 1 or read_ahead < 0:
            raise ValueError("a worker needs concurrency >= 1 and read_ahead >= 0")
        if not 1 <= min_receive <= min(MAX_BATCH, concurrency + read_ahead):
            raise ValueError(f"min_receive must be within 1..{MAX_BATCH} and fit in hand")
        self._queue = queue
        self._handle = handle
        self._name = name
        self._concurrency = concurrency
        self._holding = concurrency + read_ahead
        self._min_receive = min_receive
        self._runs_first = runs_first
        self._pace = Pace(backoff)
        self._deleting: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Receive and handle messages until cancelled. On cancellation the messages in hand
        are dropped (those being handled are cancelled): not deleted, they come back to a
        worker after the visibility timeout."""
        in_flight: set[asyncio.Task[None]] = set()
        ahead = ReadAhead(self._runs_first)
        receiving: asyncio.Task[Sequence[QueuedTask]] | None = None
        try:
            while True:
                while ahead and len(in_flight) < self._concurrency:
                    handling = asyncio.create_task(
                        self._handle_one(ahead.pop()), name=f"{self._name}: message"
                    )
                    in_flight.add(handling)
                    handling.add_done_callback(in_flight.discard)
                    handling.add_done_callback(self._log_crash)
                room = self._holding - len(in_flight) - len(ahead)
                if receiving is None and room >= self._min_receive:
                    receiving = asyncio.create_task(
                        self._receive(min(MAX_BATCH, room)), name=f"{self._name}: receive"
                    )
                waiting: set[asyncio.Future[Any]] = set(in_flight)
                if receiving is not None:
                    waiting.add(receiving)
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if receiving is None or not receiving.done():
                    continue
                done, receiving = receiving, None
                try:
                    ahead.extend(done.result())
                except Exception as error:
                    self._pace.outage()
                    log.warning(
                        "%s: receiving failed (%d in a row): %s",
                        self._name,
                        self._pace.rounds_in_a_row + 1,
                        error,
                        # The traceback once per outage, not on every retry.
                        exc_info=self._pace.rounds_in_a_row == 0,
                    )
        finally:
            pending = [*in_flight, *self._deleting, *([receiving] if receiving else [])]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _receive(self, max_messages: int) -> Sequence[QueuedTask]:
        delay = self._pace.next_round()
        if delay:
            log.info(
                "%s: receiving again in %.1fs (%d rounds in a row met an outage)",
                self._name,
                delay,
                self._pace.rounds_in_a_row,
            )
            await asyncio.sleep(delay)
        return await self._queue.receive(max_messages)

    async def _handle_one(self, message: QueuedTask) -> None:
        outcome = await self._handle(message.body)
        if outcome is Outcome.BACK_OFF:
            self._pace.outage()
        elif outcome is Outcome.DONE:
            deleting = asyncio.create_task(self._delete(message), name=f"{self._name}: delete")
            self._deleting.add(deleting)
            deleting.add_done_callback(self._deleting.discard)

    async def _delete(self, message: QueuedTask) -> None:
        try:
            await self._queue.delete(message)
        except Exception as exc:
            # It comes back, its handler answers the same again (idempotent), and it is
            # deleted then: worth a line, not a retry.
            log.warning("%s: could not delete a handled message: %s", self._name, exc)

    def _log_crash(self, handling: asyncio.Task[None]) -> None:
        """What escapes a handler is a crash: its message is redelivered. Retrieved here so
        asyncio does not report it as lost."""
        if handling.cancelled():
            return
        error = handling.exception()
        if error is not None:
            log.error("%s: a handler crashed; its message is left: %r", self._name, error)


class Pace:
    """When the next receive may go: at once, or after `backoff.delay(n)` when the last n
    rounds in a row met an outage (module docstring)."""

    def __init__(self, backoff: Backoff) -> None:
        self._backoff = backoff
        self._in_a_row = 0  # finished rounds in a row that met an outage
        self._outage = False  # in the round under way

    @property
    def rounds_in_a_row(self) -> int:
        return self._in_a_row

    def outage(self) -> None:
        self._outage = True

    def next_round(self) -> float:
        """Ends the round under way; returns how long to wait before the next receive."""
        if not self._outage:
            self._in_a_row = 0
            return 0.0
        self._outage = False
        self._in_a_row += 1
        return self._backoff.delay(self._in_a_row)


class ReadAhead:
    """Received messages not handled yet: those `runs_first` picks first, the others after,
    each in the order received."""

    def __init__(self, runs_first: Callable[[str], bool] | None = None) -> None:
        self._runs_first = runs_first
        self._first: deque[QueuedTask] = deque()
        self._later: deque[QueuedTask] = deque()

    def __len__(self) -> int:
        return len(self._first) + len(self._later)

    def extend(self, messages: Iterable[QueuedTask]) -> None:
        for message in messages:
            first = self._runs_first is None or self._runs_first(message.body)
            (self._first if first else self._later).append(message)

    def pop(self) -> QueuedTask:
        return self._first.popleft() if self._first else self._later.popleft()
