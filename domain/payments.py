"""What can happen at the card provider: the payment's statuses as the saga follows them, and
the provider's failures as named errors (domain.saga_errors names each for the state machine).
"""

from __future__ import annotations

import enum
from typing import Final


class PaymentStatus(enum.Enum):
    """One payment per order (payments.status). The *-ING statuses are written before the
    provider is called, so a crash or a timeout leaves a trace that an outcome is unknown: the
    compensations resolve it by replaying the call with the same idempotency key."""

    AUTHORIZING = "AUTHORIZING"  # authorize sent, outcome unknown
    AUTHORIZED = "AUTHORIZED"  # a hold exists
    DECLINED = "DECLINED"  # the provider refused the authorization
    ABANDONED = "ABANDONED"  # the authorization's outcome could not be learned; a hold lapses
    CAPTURING = "CAPTURING"  # capture sent, outcome unknown
    CAPTURED = "CAPTURED"  # money taken
    CAPTURE_FAILED = "CAPTURE_FAILED"  # the provider refused the capture; the hold remains
    VOIDED = "VOIDED"  # the hold was released
    REFUNDED = "REFUNDED"  # the money was given back

    @property
    def may_hold_money(self) -> bool:
        """The provider may still hold, or have taken, the customer's money: an order in a
        final status other than CONFIRMED must not keep such a payment."""
        return self in _MAY_HOLD_MONEY


_MAY_HOLD_MONEY: Final = frozenset(
    {
        PaymentStatus.AUTHORIZING,
        PaymentStatus.AUTHORIZED,
        PaymentStatus.CAPTURING,
        PaymentStatus.CAPTURED,
        PaymentStatus.CAPTURE_FAILED,
    }
)


class PaymentError(Exception):
    """A payment step failed at the provider."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PaymentDeclinedError(PaymentError):
    pass


class PaymentInsufficientFundsError(PaymentError):
    pass


class PaymentProviderUnavailableError(PaymentError):
    """Transient: the provider answered 5xx or could not be reached. Retried."""


class PaymentTimeoutError(PaymentError):
    """Transient: the provider did not answer within the client's timeout. Retried with the
    same idempotency key, so a late success is not charged twice."""


# The provider's refusals: final answers, recorded as such (a retry would get them again).
REFUSALS: Final = (PaymentDeclinedError, PaymentInsufficientFundsError)
# No answer: the provider may or may not have acted. Only a replay with the key can tell.
NO_ANSWER: Final = (PaymentTimeoutError, PaymentProviderUnavailableError)
