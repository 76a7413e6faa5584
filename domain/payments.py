"""What can happen at the card provider, as named errors (domain.saga_errors names each for
the state machine)."""

from __future__ import annotations


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
