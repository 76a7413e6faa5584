"""The profile update's wire format: deterministic request ids, and what the worker accepts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from adapters.eventbridge import profile_update_detail, profile_update_request_id
from domain.commands import UpdateCustomerProfile
from workflows.profile_updates import MalformedMessageError, ProfileUpdateRequest, parse_message

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def test_request_id_is_deterministic_per_customer_and_key() -> None:
    first = profile_update_request_id("c-0001", "key-1")
    assert first == profile_update_request_id("c-0001", "key-1")
    assert first.startswith("pu-") and len(first) == 27
    assert first != profile_update_request_id("c-0002", "key-1")
    assert first != profile_update_request_id("c-0001", "key-2")
    # The separator keeps ("c-1", "2x") and ("c-12", "x") apart.
    assert profile_update_request_id("c-1", "2x") != profile_update_request_id("c-12", "x")


def envelope(detail: object) -> str:
    """An SQS body as an EventBridge rule delivers it."""
    return json.dumps(
        {
            "version": "0",
            "id": "e-1",
            "detail-type": "CustomerProfileUpdateRequested",
            "source": "hemisphere.api",
            "time": "2026-03-01T09:30:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        }
    )


def test_the_worker_reads_what_the_publisher_writes() -> None:
    command = UpdateCustomerProfile("c-0001", "Ada L.", None, "key-1")
    request_id = profile_update_request_id("c-0001", "key-1")
    detail = profile_update_detail(command, request_id, AT)

    assert detail["requestedAt"] == "2026-03-01T09:30:00.000000Z"
    assert parse_message(envelope(detail)) == ProfileUpdateRequest(request_id, command)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps(["a list"]),
        json.dumps({"no": "detail"}),
        envelope("a string"),
        envelope({"customerId": "c-1", "name": "A", "idempotencyKey": "k"}),  # no requestId
        envelope({"requestId": "pu-1", "customerId": 7, "name": "A", "idempotencyKey": "k"}),
        envelope({"requestId": "pu-1", "customerId": "c-1", "idempotencyKey": "k"}),  # no change
        envelope({"requestId": "pu-1", "customerId": "c-1", "name": "", "idempotencyKey": "k"}),
        envelope({"requestId": "pu-1", "customerId": "c-1", "name": "A", "idempotencyKey": "a b"}),
        envelope({"requestId": "pu-1", "customerId": "c-1", "email": 5, "idempotencyKey": "k"}),
    ],
)
def test_malformed_messages_are_named_as_such(body: str) -> None:
    with pytest.raises(MalformedMessageError):
        parse_message(body)
