"""Client errors never show where the backends live."""

from __future__ import annotations

import pytest
from graphql import GraphQLError

from domain.errors import ProjectionStoreUnavailableError
from schema.errors import format_error, redact_endpoints


@pytest.mark.parametrize(
    "message",
    [
        'Could not connect to the endpoint URL: "http://127.0.0.1:5000/tables"',
        "Connect call failed ('10.0.3.7', 5432)",
        "connection to server on socket /tmp/pg/.s.PGSQL.5432 failed",
        "postgresql://postgres@/hemisphere?host=/var/run/pg is down",
        "localhost:4566 refused",
        "db.internal.example:5432 at 192.168.1.20",
    ],
)
def test_addresses_are_replaced(message: str) -> None:
    redacted = redact_endpoints(message)
    for secret in ("127.0.0.1", "5000", "10.0.3.7", "5432", "/tmp/pg", "/var/run", "4566"):
        assert secret not in redacted
    assert "an internal endpoint" in redacted


def test_plain_messages_are_unchanged() -> None:
    message = "Product p-0001 is at version 3; the order total is 12.50 USD"
    assert redact_endpoints(message) == message


def test_a_backend_outage_reaches_the_client_without_its_endpoint() -> None:
    outage = ProjectionStoreUnavailableError(
        "the projection store at http://127.0.0.1:41234 is unavailable; retry later"
    )
    error = GraphQLError("x", original_error=outage, path=["product"])
    formatted = format_error(error)
    assert "41234" not in formatted["message"] and "127.0.0.1" not in formatted["message"]
    assert formatted["errorInfo"] == {"retryable": True}
