"""The profile update worker: long-polls the queue that the event bus fills with
CustomerProfileUpdateRequested events, and applies each one through the ProfileStore port.

Delivery is at least once (SQS), so the store applies a request once per (customer,
idempotency key) and a redelivery is a harmless duplicate. A message is deleted once it has
an outcome (applied, duplicate, conflict, rejected) or can never have one (malformed); it is
left on the queue, to come back after its visibility timeout, only when the store could not
be reached or failed unexpectedly (the queue's redrive policy ends a message that fails for
ever in its dead-letter queue).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from domain.commands import UpdateCustomerProfile
from domain.errors import BackendUnavailableError, BadRequestError
from domain.tracing import TRACE_CONTEXT_KEY
from workflows.tracing import work_span

log = logging.getLogger(__name__)

# An aiobotocore SQS client (no type stubs for SQS are installed).
SqsClient = Any


class ProfileStore(Protocol):
    async def apply_profile_update(self, request_id: str, command: UpdateCustomerProfile) -> str:
        """Apply the request unless its (customer, key) was seen; returns the outcome's name.
        Raises BackendUnavailableError when the store cannot be reached (nothing applied)."""
        ...


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


class ProfileUpdateWorker:
    def __init__(
        self,
        sqs: SqsClient,
        queue_url: str,
        store: ProfileStore,
        *,
        wait_seconds: int = 20,
        batch_size: int = 10,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._store = store
        # Long polling: an idle worker costs one request per `wait_seconds`, and a message
        # is handed over as soon as it arrives (SQS answers the waiting receive at once).
        self._wait_seconds = wait_seconds
        self._batch_size = batch_size
        self._retry_initial = retry_initial
        self._retry_max = retry_max

    async def poll_once(self) -> tuple[int, int]:
        """Receive one batch (waiting up to `wait_seconds`), handle it and delete what is
        done. Returns (received, left on the queue)."""
        answer = await self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=self._wait_seconds,
        )
        messages: list[dict[str, Any]] = answer.get("Messages", [])
        done: list[dict[str, str]] = []
        # In order, one at a time: two edits of one customer in a batch apply as sent.
        for message in messages:
            if await self._handle(message):
                done.append({"Id": message["MessageId"], "ReceiptHandle": message["ReceiptHandle"]})
        if done:
            deleted = await self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=done)
            for failure in deleted.get("Failed", []):
                # It comes back and ends as a duplicate: worth a line, not a retry.
                log.warning(
                    "profile updates: could not delete message %s: %s",
                    failure.get("Id"),
                    failure.get("Message"),
                )
        return len(messages), len(messages) - len(done)

    async def run(self) -> None:
        """Poll forever; back off while the queue or the store is unreachable (retrying at
        once would only count receives towards the dead-letter queue). Stops when cancelled."""
        failures = 0
        while True:
            try:
                _, left = await self.poll_once()
            except Exception as error:
                left = 1
                log.warning(
                    "profile updates: polling failed (%d in a row): %s",
                    failures + 1,
                    error,
                    exc_info=failures == 0,
                )
            if not left:
                failures = 0
                continue
            failures += 1
            await asyncio.sleep(self._retry_delay(failures))

    def _retry_delay(self, failures: int) -> float:
        ceiling = min(self._retry_max, self._retry_initial * 2 ** (failures - 1))
        return random.uniform(ceiling / 2, ceiling)  # jitter: instances do not retry in step

    async def _handle(self, message: Mapping[str, Any]) -> bool:
        """Whether the message is done with (and can be deleted)."""
        try:
            request = parse_message(str(message.get("Body", "")))
        except MalformedMessageError as exc:
            log.warning(
                "profile updates: dropping malformed message %s: %s", message.get("MessageId"), exc
            )
            return True
        command = request.command
        try:
            with work_span("profile update", request.trace_context, customer=command.customer_id):
                outcome = await self._store.apply_profile_update(request.request_id, command)
        except BackendUnavailableError as exc:
            log.warning("profile updates: %s left for later: %s", request.request_id, exc)
            return False
        except Exception:
            log.exception("profile updates: %s failed; left for a redelivery", request.request_id)
            return False
        level = logging.WARNING if outcome == "conflict" else logging.INFO
        log.log(
            level,
            "profile update %s (customer %s, key %s): %s",
            request.request_id,
            command.customer_id,
            command.idempotency_key,
            outcome,
        )
        return True


async def run_profile_update_worker(
    sqs: SqsClient,
    queue_url: str,
    store: ProfileStore,
    *,
    wait_seconds: int = 20,
) -> None:
    """The worker's entry point for the lifespan or `hemisphere worker`: runs until
    cancelled."""
    await ProfileUpdateWorker(sqs, queue_url, store, wait_seconds=wait_seconds).run()
