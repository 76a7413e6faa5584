"""The profile update worker: takes from the queue that the event bus fills with
CustomerProfileUpdateRequested events, and applies each one through the ProfileStore port.
It is workflows.queue_worker's loop with the handler below.

Delivery is at least once (SQS), so the store applies a request once per (customer,
idempotency key) and a redelivery is a harmless duplicate. A message is deleted once it has
an outcome (applied, duplicate, conflict, rejected) or can never have one (malformed); it is
left on the queue, to come back after its visibility timeout, only when the store could not
be reached or failed unexpectedly (the queue's redrive policy ends a message that fails for
ever in its dead-letter queue), and then the worker backs off: receiving at once would only
count deliveries towards the dead-letter queue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from domain.backoff import Backoff
from domain.commands import UpdateCustomerProfile
from domain.errors import BackendUnavailableError, BadRequestError
from domain.tracing import TRACE_CONTEXT_KEY
from workflows.ports import ProfileStore, TaskQueue
from workflows.queue_worker import MAX_BATCH, RECEIVE_BACKOFF, Outcome, QueueWorker
from workflows.tracing import work_span

log = logging.getLogger(__name__)

# Received ten at a time (one SQS batch), the next ten once these are handled.
BATCH: Final = MAX_BATCH


class MalformedMessageError(ValueError):
    """A message no retry can make sense of."""


@dataclass(frozen=True, slots=True)
class ProfileUpdateRequest:
    request_id: str
    command: UpdateCustomerProfile
    # The mutation's trace context, when it was traced (domain.tracing).
    trace_context: Mapping[str, Any] = field(default_factory=dict)


def _text(detail: Mapping[str, Any], key: str, *, optional: bool = False) -> str | None:
    value = detail.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise MalformedMessageError(f"detail.{key} must be a string, not {value!r}")
    return value


def parse_message(body: str) -> ProfileUpdateRequest:
    """The request in an SQS message body: an EventBridge event whose `detail` is the wire
    format of adapters/eventbridge.py. Validated as the mutation validated it."""
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise MalformedMessageError(f"the body is not JSON: {exc}") from None
    detail = event.get("detail") if isinstance(event, dict) else None
    if not isinstance(detail, dict):
        raise MalformedMessageError("the body is not an event with a detail object")
    request_id = _text(detail, "requestId")
    customer_id = _text(detail, "customerId")
    idempotency_key = _text(detail, "idempotencyKey")
    assert request_id is not None and customer_id is not None and idempotency_key is not None
    try:
        command = UpdateCustomerProfile(
            customer_id=customer_id,
            name=_text(detail, "name", optional=True),
            email=_text(detail, "email", optional=True),
            idempotency_key=idempotency_key,
        )
    except BadRequestError as exc:
        raise MalformedMessageError(exc.message) from None
    return ProfileUpdateRequest(
        request_id, command, {k: v for k, v in detail.items() if k == TRACE_CONTEXT_KEY}
    )


class ProfileUpdateHandler:
    """The handler of one profile update message (workflows.queue_worker.Handler)."""

    def __init__(self, store: ProfileStore) -> None:
        self._store = store

    async def handle(self, body: str) -> Outcome:
        try:
            request = parse_message(body)
        except MalformedMessageError as exc:
            log.warning("profile updates: dropping a malformed message: %s", exc)
            return Outcome.DONE
        command = request.command
        try:
            with work_span("profile update", request.trace_context, customer=command.customer_id):
                outcome = await self._store.apply_profile_update(request.request_id, command)
        except BackendUnavailableError as exc:
            log.warning("profile updates: %s left for later: %s", request.request_id, exc)
            return Outcome.BACK_OFF
        except Exception:
            log.exception("profile updates: %s failed; left for a redelivery", request.request_id)
            return Outcome.BACK_OFF
        level = logging.WARNING if outcome == "conflict" else logging.INFO
        log.log(
            level,
            "profile update %s (customer %s, key %s): %s",
            request.request_id,
            command.customer_id,
            command.idempotency_key,
            outcome,
        )
        return Outcome.DONE


def profile_update_worker(
    queue: TaskQueue, store: ProfileStore, *, backoff: Backoff = RECEIVE_BACKOFF
) -> QueueWorker:
    """One message at a time, in the order received: two edits of one customer that arrive
    together apply as sent. A batch is received once the last one is handled, so a receive
    serves up to ten messages (and the queue's deletions of a batch can share a request)."""
    return QueueWorker(
        queue,
        ProfileUpdateHandler(store).handle,
        name="profile updates",
        concurrency=1,
        read_ahead=BATCH - 1,
        min_receive=BATCH,
        backoff=backoff,
    )


async def run_profile_update_worker(queue: TaskQueue, store: ProfileStore) -> None:
    """The worker's entry point for the lifespan or `hemisphere worker`: runs until
    cancelled."""
    await profile_update_worker(queue, store).run()
