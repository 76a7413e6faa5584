"""What can happen at the card provider, as named errors the saga routes on."""

from __future__ import annotations

from domain.saga import StepError


class PaymentError(Exception):
    """A payment step failed; `step_error` is the name the state machine catches."""

    step_error = "Payment.Failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PaymentDeclinedError(PaymentError):
    step_error = StepError.PAYMENT_DECLINED


class PaymentInsufficientFundsError(PaymentError):
    step_error = StepError.PAYMENT_INSUFFICIENT_FUNDS


class PaymentProviderUnavailableError(PaymentError):
    """Transient: the provider answered 5xx or could not be reached. Retried."""

    step_error = StepError.PAYMENT_UNAVAILABLE


class PaymentTimeoutError(PaymentError):
    """Transient: the provider did not answer within the client's timeout. Retried with the
    same idempotency key, so a late success is not charged twice."""

    step_error = StepError.PAYMENT_TIMEOUT
