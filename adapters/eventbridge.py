"""Asynchronous profile updates through EventBridge: the resolvers' ProfileUpdates port, and
the route (bus → rule → SQS queue) that delivers them to the worker.

The mutation only puts an event on the bus and answers with a receipt; a worker
(workflows/profile_updates.py) applies it from the queue. So a burst of profile edits never
waits on PostgreSQL, and the bus is the one place other consumers can subscribe to later.

The event's `detail` is the wire format both sides agree on:
    {"requestId", "customerId", "name", "email", "idempotencyKey", "requestedAt"}
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Final, Literal

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from adapters.aws import StaticCredentials, aws_client, client_config, error_code
from adapters.sqs import LONG_POLL_SECONDS, SqsClient, ensure_queue, queue_arn
from domain.codec import encode_time
from domain.commands import UpdateCustomerProfile
from domain.errors import BackendUnavailableError

SOURCE: Final = "hemisphere.api"
DETAIL_TYPE: Final = "CustomerProfileUpdateRequested"
# Rule names are unique per bus; targets are replaced by id, so re-running is harmless.
RULE_NAME: Final = "customer-profile-update-requested"
TARGET_ID: Final = "profile-updates-queue"
# A message the worker failed this many times goes to the dead-letter queue instead of
# looping forever (the worker backs off while PostgreSQL is down, so an outage costs few).
MAX_RECEIVES: Final = 10
# How long the queue's deletions wait for each other (adapters.sqs.SqsTaskQueue; ten go at
# once): the worker handles a batch one message at a time and nobody waits for a deletion
# (the visibility timeout is 30 s), so a batch's deletions share one DeleteMessageBatch.
DELETE_LINGER_SECONDS: Final = 1.0

# aiobotocore's EventBridge client (no type stubs for it are installed).
EventsClient = Any


class EventBusUnavailableError(BackendUnavailableError):
    """The event bus refused or could not take the request: nothing was accepted."""


def profile_update_request_id(customer_id: str, idempotency_key: str) -> str:
    """The same (customer, key) always names the same request, however often it is sent."""
    digest = hashlib.sha256(f"profile\x1f{customer_id}\x1f{idempotency_key}".encode())
    return "pu-" + digest.hexdigest()[:24]


def profile_update_detail(
    command: UpdateCustomerProfile, request_id: str, requested_at: datetime
) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "customerId": command.customer_id,
        "name": command.name,
        "email": command.email,
        "idempotencyKey": command.idempotency_key,
        "requestedAt": encode_time(requested_at),
    }


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EventBridgeProfileUpdates:
    """resolvers.ports.ProfileUpdates: one PutEvents per request."""

    def __init__(
        self,
        events: EventsClient,
        bus_name: str,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._events = events
        self._bus_name = bus_name
        self._clock = clock

    async def submit(self, command: UpdateCustomerProfile) -> tuple[str, datetime]:
        request_id = profile_update_request_id(command.customer_id, command.idempotency_key)
        accepted_at = self._clock()
        entry = {
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": json.dumps(profile_update_detail(command, request_id, accepted_at)),
            "EventBusName": self._bus_name,
            "Time": accepted_at,
        }
        with _translate_errors(self._bus_name):
            answer = await self._events.put_events(Entries=[entry])
        failed = [e for e in answer.get("Entries", [{}]) if e.get("ErrorCode")]
        if answer.get("FailedEntryCount", 0) or failed:
            # PutEvents answers 200 with a failed entry when the bus throttles or errs
            # inside: the request was not accepted, so the caller must not get a receipt.
            reason = failed[0] if failed else {}
            raise EventBusUnavailableError(
                f"the event bus {self._bus_name} did not accept the profile update "
                f"({reason.get('ErrorCode', 'unknown')}: {reason.get('ErrorMessage', '')}); "
                "retry later with the same idempotencyKey"
            )
        return request_id, accepted_at


@contextlib.contextmanager
def _translate_errors(bus_name: str) -> Iterator[None]:
    """Any failure of EventBridge or SQS here (refused, timed out, throttled, bus missing)
    means the request was not taken: ServiceUnavailable, retryable with the same key."""
    try:
        yield
    except (BotoCoreError, ClientError) as error:
        raise EventBusUnavailableError(
            f"the event bus {bus_name} is unavailable ({error}); retry later"
        ) from error


async def ensure_profile_update_route(
    events: EventsClient, sqs: SqsClient, bus_name: str, queue_name: str
) -> str:
    """Create (or find) the bus, the queue and its dead-letter queue, and the rule that
    sends CustomerProfileUpdateRequested events to the queue; returns the queue's URL.
    Safe to run at every start, by every instance."""
    with _translate_errors(bus_name):
        try:
            await events.create_event_bus(Name=bus_name)
        except ClientError as error:
            # Already there is the usual case after the first start.
            if error_code(error) != "ResourceAlreadyExistsException":
                raise

        dead_letters_arn = await queue_arn(sqs, await ensure_queue(sqs, f"{queue_name}-dlq"))
        # Its attributes are set below: the policy names the rule, made in between.
        queue_url = await ensure_queue(sqs, queue_name)
        profile_queue_arn = await queue_arn(sqs, queue_url)

        rule = await events.put_rule(
            Name=RULE_NAME,
            EventBusName=bus_name,
            EventPattern=json.dumps({"source": [SOURCE], "detail-type": [DETAIL_TYPE]}),
            State="ENABLED",
            Description="Profile updates from the API, to the worker's queue",
        )
        await sqs.set_queue_attributes(
            QueueUrl=queue_url,
            Attributes={
                "VisibilityTimeout": "30",
                "ReceiveMessageWaitTimeSeconds": str(LONG_POLL_SECONDS),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dead_letters_arn, "maxReceiveCount": MAX_RECEIVES}
                ),
                # On AWS the bus may only deliver to a queue whose policy lets this rule in.
                "Policy": json.dumps(_delivery_policy(profile_queue_arn, str(rule["RuleArn"]))),
            },
        )
        await events.put_targets(
            Rule=RULE_NAME,
            EventBusName=bus_name,
            Targets=[{"Id": TARGET_ID, "Arn": profile_queue_arn}],
        )
    return queue_url


def _delivery_policy(target_arn: str, rule_arn: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ProfileUpdatesFromEventBridge",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": target_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }


@contextlib.asynccontextmanager
async def create_client(
    service: Literal["events", "sqs"],
    endpoint_url: str | None,
    region: str,
    credentials: StaticCredentials | None = None,
    *,
    config: Config | None = None,
) -> AsyncIterator[Any]:
    """An EventBridge or SQS client for the `async with` block, failing fast like the
    DynamoDB one; an SQS client's read timeout outlasts the worker's long poll."""
    if config is None and service == "sqs":
        config = client_config(read_timeout=LONG_POLL_SECONDS + 10)
    async with aws_client(service, endpoint_url, region, credentials, config=config) as client:
        yield client
