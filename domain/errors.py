"""Named errors of the domain; each carries the AppSync `errorType` a client sees.

HemisphereError
├── BadRequestError            BadRequestException: malformed arguments, bad nextToken
├── NotFoundError              NotFound
├── UnauthorizedError          UnauthorizedException: no or wrong credentials (HTTP 401)
├── ForbiddenFieldError        Unauthorized: the caller's mode may not read a field
├── BackendUnavailableError    ServiceUnavailable: a backend is down; retry later
│   └── ProjectionStoreUnavailableError
├── ReadOnlyRegionError        ReadOnlyRegion: the primary is unreachable; nothing written
│   └── StaleEpochError         a region fenced out by a newer epoch (a promotion elsewhere)
├── IdempotencyConflictError   IdempotencyConflict: a key reused for another request
├── ThrottledError             ThrottlingException: the sagas are saturated; retry after a while
└── OrderNotCancellableError   OrderNotCancellable: only CONFIRMED orders can be cancelled
"""

from __future__ import annotations


class HemisphereError(Exception):
    error_type = "InternalFailure"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(HemisphereError):
    error_type = "BadRequestException"


class NotFoundError(HemisphereError):
    error_type = "NotFound"


class UnauthorizedError(HemisphereError):
    error_type = "UnauthorizedException"


class ForbiddenFieldError(HemisphereError):
    error_type = "Unauthorized"

    def __init__(self, field_name: str, type_name: str) -> None:
        super().__init__(f"Not Authorized to access {field_name} on type {type_name}")


class BackendUnavailableError(HemisphereError):
    """A backend did not answer in time. The request changed nothing; retry with backoff."""

    error_type = "ServiceUnavailable"


class ProjectionStoreUnavailableError(BackendUnavailableError):
    pass


class ReadOnlyRegionError(HemisphereError):
    """The primary region cannot be reached: this region serves reads only until it can."""

    error_type = "ReadOnlyRegion"


class StaleEpochError(ReadOnlyRegionError):
    """This region acts under an epoch that a promotion has superseded: it writes nothing.
    A saga step that meets it fails with Region.Fenced (domain.saga_errors; nothing is
    retried: the new primary's reconciler drives the saga from the replicated relational
    state)."""


class IdempotencyConflictError(HemisphereError):
    """The idempotency key was used before for a different request."""

    error_type = "IdempotencyConflict"


class ThrottledError(HemisphereError):
    """Too much work in flight (sagas started and not final): nothing was started. Retry the
    same request, same idempotency key, after `retry_after_seconds`. Not a
    BackendUnavailableError: the primary answered, and a secondary must not read it as the
    primary being down (ReadOnlyRegion)."""

    error_type = "ThrottlingException"

    def __init__(self, message: str, retry_after_seconds: float) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class OrderNotCancellableError(HemisphereError):
    """Only a CONFIRMED order can be cancelled."""

    error_type = "OrderNotCancellable"
