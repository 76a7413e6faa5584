"""GraphQL errors in AppSync's shape: message, errorType, errorInfo, path, locations, data."""

from __future__ import annotations

import re
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError

from domain.errors import BackendUnavailableError, HemisphereError, ThrottledError

INTERNAL_MESSAGE = "An internal failure occurred; it has been logged."

# Where a backend lives is the operator's business, never a client's: URLs, addresses with or
# without a port, asyncpg's ('host', port) pairs, libpq's host=, PostgreSQL socket paths.
_ENDPOINT = re.compile(
    r"[a-z][a-z0-9+.-]*://[^\s'\"),]+"
    r"|\('[^']*',\s*\d+\)"
    r"|\bhost=[^\s&'\"]+"
    r"|\S*/\.s\.PGSQL\.\d+"
    r"|\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?"
    r"|\blocalhost(?::\d+)?"
    r"|\b[a-z0-9-]+(?:\.[a-z0-9-]+)+:\d{2,5}\b",
    re.IGNORECASE,
)


def redact_endpoints(message: str) -> str:
    """`message` with every backend address in it replaced by "an internal endpoint"."""
    return _ENDPOINT.sub("an internal endpoint", message)


def error_type_of(error: GraphQLError) -> str:
    original = error.original_error
    if isinstance(original, HemisphereError):
        return original.error_type
    if isinstance(error, GraphQLSyntaxError):
        return "InvalidSyntax"
    if original is None or error.path is None:
        # Raised while validating the document or coercing variables (a bad AWSEmail, say).
        return "ValidationError"
    return "InternalFailure"


def is_unexpected(error: GraphQLError) -> bool:
    return error_type_of(error) == "InternalFailure"


def format_error(error: GraphQLError) -> dict[str, Any]:
    error_type = error_type_of(error)
    original = error.original_error
    if isinstance(original, HemisphereError):
        message = redact_endpoints(original.message)
    elif error_type == "InternalFailure":
        message = INTERNAL_MESSAGE  # never leak an unexpected exception's text to clients
    else:
        message = error.message
    return {
        "path": error.path,
        "data": None,
        "errorType": error_type,
        "errorInfo": error_info(original),
        "locations": [
            {"line": loc.line, "column": loc.column, "sourceName": None}
            for loc in error.locations or ()
        ],
        "message": message,
    }


def error_info(original: Exception | None) -> dict[str, Any] | None:
    """What a client may do about the error: retry what failed on a backend outage (nothing
    was written), and a throttled request after the hint."""
    if isinstance(original, ThrottledError):
        return {"retryable": True, "retryAfterSeconds": round(original.retry_after_seconds, 3)}
    if isinstance(original, BackendUnavailableError):
        return {"retryable": True}
    return None


def request_error(error_type: str, message: str) -> dict[str, Any]:
    """A whole-request error (bad JSON, no credentials): no data, no path, no locations."""
    return {"errors": [{"errorType": error_type, "message": message}]}
